//! Sign-up: every field valid, then uniqueness, then the KDF, then the conditional insert;
//! optionally signing the new user in (docs/behaviour.md §2).

use super::attempts::Refused;
use super::{Accounts, Client, FieldErrors, PasswordInput, Problem, SignedIn};
use crate::domain::{Email, FullName, PlainPassword, Username};
use crate::security::digest::PasswordDigest;
use crate::security::password::KdfError;
use crate::store::{StoreError, Taken, User};

/// Why a sign-up created no user.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("invalid fields")]
    Invalid(FieldErrors),
    #[error("{0}")]
    Taken(Taken),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct SignUpInput<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub full_name: &'a str,
    pub password: PasswordInput<'a>,
}

/// A created user, signed in when asked and the password did not change meanwhile.
#[derive(Debug)]
pub struct SignedUp {
    pub user: User,
    pub signed_in: Option<SignedIn>,
}

/// A new password for sign-up or change: the digest to hash, or field errors. Length and
/// repeat rules apply only where the server sees the plain password.
pub(super) fn new_password_digest(
    username: &str,
    input: &PasswordInput<'_>,
    fields: [&'static str; 3],
    errors: &mut FieldErrors,
) -> Option<PasswordDigest> {
    let [field, repeat_field, digest_field] = fields;
    match input {
        PasswordInput::Digest(d) => match PasswordDigest::from_wire(d) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.reject(digest_field, e.to_string());
                None
            }
        },
        PasswordInput::Plain { password, repeat } => match PlainPassword::parse(password) {
            Ok(p) => {
                // A repeat too long to normalise cannot match a valid password.
                if let Some(r) = repeat
                    && !(PlainPassword::fits_before_normalising(r)
                        && crate::domain::canonical_password(r) == p.as_str())
                {
                    errors.add(repeat_field, Problem::PasswordsDiffer);
                    return None;
                }
                Some(PasswordDigest::from_plain(username, &p))
            }
            Err(msg) => {
                errors.reject(field, msg);
                None
            }
        },
        PasswordInput::Missing => {
            errors.add(field, Problem::MissingPassword);
            None
        }
    }
}

impl Accounts {
    /// Creates the user (every field valid, then uniqueness, then the KDF). With `session`,
    /// also signs them in, replacing the browser's previous session if any.
    pub async fn sign_up(
        &self,
        input: SignUpInput<'_>,
        client: &Client,
        session: Option<Option<[u8; 32]>>,
    ) -> Result<SignedUp, SignUpError> {
        self.admit(client, "sign_up", None).await?;
        let mut errors = FieldErrors::default();
        let username = Username::parse(input.username)
            .map_err(|m| errors.reject("username", m))
            .ok();
        let password_field_user = username.as_ref().map_or(input.username, Username::as_str);
        let digest = new_password_digest(
            password_field_user,
            &input.password,
            ["password", "password_repeat", "password_digest"],
            &mut errors,
        );
        let required = self.verification == crate::config::EmailVerification::Required;
        let email = Email::parse_optional(input.email)
            .map_err(|m| errors.reject("email", m))
            .ok()
            .and_then(|e| match e {
                None if required => {
                    errors.reject("email", "Enter your email address: this site confirms it.");
                    None
                }
                e => Some(e),
            });
        let full_name = FullName::parse_optional(input.full_name)
            .map_err(|m| errors.reject("full_name", m))
            .ok();
        let (Some(username), Some(digest), Some(email), Some(full_name)) =
            (username, digest, email, full_name)
        else {
            return Err(SignUpError::Invalid(errors));
        };

        if let Some(t) = self.store.taken(&username, email.as_ref()).await? {
            return Err(self.taken(client, &username, t).await);
        }
        self.spend_kdf(client, "sign_up", Some(username.as_str()))
            .await?;

        let hash = self.kdf.run(move |kdf| kdf.hash(&digest)).await??;
        let now = self.now_ms();
        let verify = email
            .as_ref()
            .and_then(|e| self.verify_link(username.as_str(), e.as_str(), now))
            .map(|(_, link)| link);
        let queued = verify.is_some();
        let created = self
            .store
            .create_user_verifying(
                &username,
                email.as_ref(),
                full_name.as_ref(),
                &hash,
                now,
                verify,
            )
            .await?;
        if queued && created.is_ok() {
            self.mail_queued();
        }
        let user = match created {
            Ok(user) => user,
            Err(t) => return Err(self.taken(client, &username, t).await),
        };
        tracing::info!(event = "sign_up", username = %user.username, "account created");
        self.audit(client, "sign_up", "ok", Some(&user.username), Some(user.id));
        // Under `required` the account waits for its address: no session until it is confirmed.
        let session = session.filter(|_| !required);
        let Some(replaces) = session else {
            return Ok(SignedUp {
                user,
                signed_in: None,
            });
        };
        use crate::audit::EventExt;
        let event = self
            .sign_in_event(client, &user.username, user.id)
            .detail("at sign-up");
        let opened = self
            .open_session(user.id, user.created_ms, client, replaces, event)
            .await?;
        let signed_in = opened.map(|session| SignedIn {
            username: user.username.clone(),
            session,
            device_token: crate::security::device::issue(
                &self.key,
                user.id,
                user.created_ms,
                user.created_ms,
            ),
        });
        Ok(SignedUp { user, signed_in })
    }

    /// A taken username or email: counted against the address and audited.
    async fn taken(&self, client: &Client, username: &Username, t: Taken) -> SignUpError {
        self.failed(client).await;
        self.audit(client, "sign_up", "taken", Some(username.as_str()), None);
        SignUpError::Taken(t)
    }
}
