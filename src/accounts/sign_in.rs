//! Sign-in: address limits and the lock first (no KDF when refused), then the password with
//! the same KDF work for every outcome, then a session (docs/behaviour.md §3, §4).

use std::time::Duration;

use super::attempts::{Counted, Refused};
use super::{Accounts, Client, PasswordInput, SignedIn};
use crate::audit::EventExt;
use crate::domain::Username;
use crate::security::digest::PasswordDigest;
use crate::security::faillock::Reservation;
use crate::security::password::KdfError;
use crate::security::session::SessionId;
use crate::store::{AuditEvent, NewSession, StoreError};

/// Why a sign-in opened no session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong password, unknown or disabled user: one answer for all.
    #[error("sign-in failed")]
    Failed,
    /// The name (or this browser's device) is locked.
    #[error("locked for {retry_after:?}")]
    Locked { retry_after: Duration },
    /// The digest field is malformed; the digest format's reason.
    #[error("{0}")]
    BadDigest(String),
    /// The lock's table is full.
    #[error("lock table full")]
    Full { retry_after: Duration },
    /// The password is right, but `--email-verification required` waits for the address.
    #[error("email not confirmed")]
    EmailUnverified {
        user_id: i64,
        username: String,
        email: Option<String>,
    },
    /// The password is right and the user has authenticator codes on: no session yet, the
    /// code step decides (`code_step.rs`).
    #[error("a code is required")]
    CodeRequired(super::code_step::PasswordPassed),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A typed password's digest, or, for one too long to be any valid password, a digest no
/// password matches: the check then fails with the same KDF work as a wrong password
/// (docs/behaviour.md §2: sign-in applies no format rule), without normalising the long field.
pub(super) fn checked_or_unguessable(
    digest: Result<PasswordDigest, crate::security::digest::TooLong>,
) -> PasswordDigest {
    digest.unwrap_or_else(|_| PasswordDigest::unguessable())
}

impl Accounts {
    /// The audit event of a successful sign-in.
    pub(super) fn sign_in_event(
        &self,
        client: &Client,
        username: &str,
        user_id: i64,
    ) -> AuditEvent {
        self.event("sign_in", "ok", client)
            .user(Some(username), Some(user_id))
    }

    /// Opens a session if the user's password has not changed since `password_changed_ms`
    /// (read with the hash just verified). `None` when it changed or the user was disabled.
    /// The sign-in's audit row is written in the same trip to the database, so `/account`
    /// shows it at once.
    pub(super) async fn open_session(
        &self,
        user_id: i64,
        password_changed_ms: i64,
        client: &Client,
        replaces: Option<[u8; 32]>,
        signed_in: AuditEvent,
    ) -> Result<Option<SessionId>, StoreError> {
        let id = SessionId::generate();
        let now = self.now_ms();
        let expires = now + self.sessions.max.as_millis() as i64;
        let session = NewSession {
            token_hash: id.hash(),
            user_id,
            password_changed_ms,
            now_ms: now,
            expires_ms: expires,
            user_agent: client.user_agent.clone(),
            ip: client.ip.clone(),
            replaces,
        };
        let created = self.store.open_session(session, signed_in).await?;
        if created.is_some() {
            self.audit.count("sign_in", "ok");
        }
        Ok(created.map(|_| id))
    }

    /// Checks a sign-in and opens a session replacing `replaces`.
    pub async fn sign_in(
        &self,
        typed_username: &str,
        password: PasswordInput<'_>,
        client: &Client,
        replaces: Option<[u8; 32]>,
    ) -> Result<SignedIn, SignInError> {
        let canonical = crate::domain::canonical_username(typed_username);
        let username = Username::parse(typed_username).ok();
        let name = username.as_ref().map(Username::as_str);
        let digest = match &password {
            PasswordInput::Digest(d) => PasswordDigest::from_wire(d).map_err(|e| e.to_string()),
            PasswordInput::Plain { password, .. } => Ok(checked_or_unguessable(
                PasswordDigest::from_typed(typed_username, password),
            )),
            PasswordInput::Missing => Ok(PasswordDigest::compute(typed_username, "")),
        };
        // A well-formed attempt goes straight to the reservation below, which gives the address
        // limits' verdict first (the same one `admit` gives, atomically with counting): asking
        // twice would cost a second database statement per sign-in on PostgreSQL. A malformed
        // one is never reserved unless its name is locked, so it asks here, before anything.
        if digest.is_err() {
            self.admit(client, "sign_in", name).await?;
        }
        let creds = match &username {
            Some(_) => self.store.credentials(&canonical).await?,
            None => None,
        };
        let now = self.now_ms();
        let device = match (&creds, client.device.as_deref()) {
            (Some(c), Some(token)) => crate::security::device::verify(
                &self.key,
                token,
                c.user_id,
                c.password_changed_ms,
                now,
            ),
            _ => None,
        };
        let counted = Counted::new(self, username.clone(), device);
        if let Some(c) = &creds {
            counted.forgive(c.unlocked_ms).await;
        }
        let user_id = creds.as_ref().map(|c| c.user_id);
        // Lock before field rules (docs/behaviour.md §3's order): a locked name answers 429
        // even to a bad digest. Malformed input on a free name is not a guess: nothing is
        // counted.
        if digest.is_ok() || counted.is_locked().await? {
            let reserved = counted.reserve(client, "sign_in", name).await?;
            match reserved {
                Reservation::Proceed => {}
                Reservation::Full { retry_after } => {
                    counted.release().await;
                    return Err(SignInError::Full { retry_after });
                }
                Reservation::Locked { retry_after } => {
                    // The reserved failures stay: an attempt on a locked name counts.
                    self.audit(client, "sign_in", "locked", name, user_id);
                    let by = if counted.by_device() {
                        "device"
                    } else {
                        "username"
                    };
                    // Debug only: a line per hammered attempt would fill the log; the audit
                    // trail keeps one row per episode.
                    tracing::debug!(event = "sign_in", username = %canonical, outcome = "locked", by, "sign-in refused: locked");
                    return Err(SignInError::Locked { retry_after });
                }
            }
        }
        // From here on a failure is reserved; give it back if the password is never checked.
        let digest = match digest {
            Ok(d) => d,
            Err(msg) => {
                counted.release().await;
                return Err(SignInError::BadDigest(msg));
            }
        };
        let spent = self.spend_kdf(client, "sign_in", name).await;
        counted.release_on_err(spent).await?;
        // Kept for a re-hash after success, so the password is not normalised twice.
        let rehash_digest = digest.clone();
        let check = creds.clone();
        let verified = self
            .kdf
            .run(move |kdf| match &check {
                Some(c) => kdf.verify(&digest, &c.password_hash).unwrap_or(false) && c.active,
                None => {
                    kdf.verify_dummy(&digest);
                    false
                }
            })
            .await;
        let verified = counted.release_on_err(verified).await?;
        let (Some(u), Some(creds), true) = (&username, creds, verified) else {
            // The reserved failures stay counted.
            self.audit(client, "sign_in", "failed", name, user_id);
            match &username {
                Some(u) => {
                    tracing::info!(event = "sign_in", username = %u, outcome = "failed", "sign-in failed")
                }
                None => tracing::info!(
                    event = "sign_in",
                    outcome = "failed",
                    "sign-in failed (malformed username)"
                ),
            }
            return Err(SignInError::Failed);
        };
        // A right password alone clears nothing for a user with codes on: the reservation is
        // given back (neither a failure nor a success) and the code step counts its own.
        let two_step = creds.two_step;
        if two_step {
            counted.release().await;
        } else {
            counted.succeeded().await;
        }
        if self.verification == crate::config::EmailVerification::Required && !creds.email_verified
        {
            self.audit(client, "sign_in", "unverified", name, user_id);
            return Err(SignInError::EmailUnverified {
                user_id: creds.user_id,
                username: u.as_str().to_owned(),
                email: creds.email,
            });
        }
        if two_step {
            self.audit(client, "sign_in", "code_required", name, user_id);
            return Err(SignInError::CodeRequired(self.password_passed(
                creds.user_id,
                u.clone(),
                creds.password_changed_ms,
            )));
        }
        let event = self.sign_in_event(client, u.as_str(), creds.user_id);
        let Some(id) = self
            .open_session(
                creds.user_id,
                creds.password_changed_ms,
                client,
                replaces,
                event,
            )
            .await?
        else {
            // The password changed or the user was disabled while we were checking.
            self.audit(client, "sign_in", "failed", name, user_id);
            tracing::info!(event = "sign_in", username = %u, outcome = "raced", "sign-in lost a race with a password change");
            return Err(SignInError::Failed);
        };
        tracing::info!(event = "sign_in", username = %u, outcome = "ok", ip = client.ip.as_deref().unwrap_or("-"), "signed in");
        if self.kdf.kdf().needs_rehash(&creds.password_hash) {
            self.spawn_rehash(creds.user_id, creds.password_hash, rehash_digest);
        }
        Ok(SignedIn {
            username: u.as_str().to_owned(),
            session: id,
            device_token: crate::security::device::issue(
                &self.key,
                creds.user_id,
                creds.password_changed_ms,
                now,
            ),
        })
    }

    /// Re-hashes with the current parameters in the background; the write is conditional on
    /// the old hash still being current.
    fn spawn_rehash(&self, user_id: i64, old_hash: String, digest: PasswordDigest) {
        let (kdf, store, clock) = (self.kdf.clone(), self.store.clone(), self.clock.clone());
        tokio::spawn(async move {
            let Ok(Ok(new_hash)) = kdf.run(move |k| k.hash(&digest)).await else {
                return;
            };
            let now = clock.now().as_ms();
            match store.rehash(user_id, old_hash, new_hash, now).await {
                Ok(true) => tracing::info!(user_id, "password hash upgraded to current parameters"),
                Ok(false) => {}
                Err(e) => tracing::warn!("rehash failed: {e}"),
            }
        });
    }
}
