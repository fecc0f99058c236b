//! Editing one's own details (docs/behaviour.md §11.3): the full name freely, the email only
//! with the current password (a stolen session alone cannot move the account to an attacker's
//! address), and then only as a *pending* address until it is confirmed through the link
//! mailed to it; the old address, confirmed or not, stays the account's meanwhile and gets a
//! notice.

use super::confirm::ConfirmError;
use super::{Accounts, Client, FieldErrors, PasswordInput};
use crate::domain::{Email, FullName};
use crate::store::profile::EmailChange;
use crate::store::{StoreError, Taken, User};

/// What the profile form or `PATCH /api/me` asks to change; `None` leaves a field alone.
pub struct ProfileInput<'a> {
    pub full_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub password: PasswordInput<'a>,
}

/// What changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProfileChanged {
    pub full_name: bool,
    /// A new address now waits for confirmation.
    pub email_pending: bool,
    /// The address changed at once (a site without mail: unconfirmed).
    pub email_set: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid fields")]
    Invalid(FieldErrors),
    /// Another account has the address (in any case).
    #[error("email taken")]
    EmailTaken,
    /// The current password was refused (wrong, locked, ...).
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    pub async fn update_profile(
        &self,
        user: &User,
        input: ProfileInput<'_>,
        client: &Client,
    ) -> Result<ProfileChanged, ProfileError> {
        let mut errors = FieldErrors::default();
        let full_name = input.full_name.map(|typed| {
            FullName::parse_optional(typed)
                .map_err(|m| errors.reject("full_name", m))
                .ok()
        });
        // An empty field, or an address equal to the current one (in any case), is no change.
        let email = input
            .email
            .map(str::trim)
            .filter(|typed| !typed.is_empty())
            .filter(|typed| {
                !user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(typed))
            })
            .map(|typed| match Email::parse_optional(typed) {
                Ok(Some(e)) => Some(e),
                Ok(None) => {
                    errors.reject("email", "Enter the new email address.");
                    None
                }
                Err(m) => {
                    errors.reject("email", m);
                    None
                }
            });
        if !errors.0.is_empty() {
            return Err(ProfileError::Invalid(errors));
        }
        let mut changed = ProfileChanged::default();
        if let Some(Some(email)) = email {
            self.confirm_password(user, input.password, client, "email_change")
                .await?;
            if self.mail.is_some() && self.verification != crate::config::EmailVerification::Off {
                self.request_email_change(user, email, client).await?;
                changed.email_pending = true;
            } else {
                match self
                    .store
                    .set_email_unverified(user.id, email, self.now_ms())
                    .await?
                {
                    Ok(()) => changed.email_set = true,
                    Err(_) => return Err(ProfileError::EmailTaken),
                }
                self.audit(
                    client,
                    "email_change",
                    "ok",
                    Some(&user.username),
                    Some(user.id),
                );
            }
        }
        if let Some(Some(name)) = full_name
            && user.full_name.as_deref() != name.as_ref().map(FullName::as_str)
        {
            self.store
                .set_full_name(user.id, name, self.now_ms())
                .await?;
            self.audit(client, "profile", "ok", Some(&user.username), Some(user.id));
            changed.full_name = true;
        }
        Ok(changed)
    }

    async fn request_email_change(
        &self,
        user: &User,
        email: Email,
        client: &Client,
    ) -> Result<(), ProfileError> {
        let now = self.now_ms();
        let verify = self
            .verify_link(&user.username, email.as_str(), now)
            .map(|(_, link)| link);
        let notice = match (&self.mail, &user.email) {
            (Some(mailer), Some(old)) => {
                let kind = crate::mail::MailKind::EmailChangeNotice {
                    username: user.username.clone(),
                };
                mailer
                    .compose(old, &kind, now, now + 86_400_000)
                    .map(|m| (m, *mailer.limits()))
                    .map_err(|e| tracing::warn!("email-change notice not composed: {e}"))
                    .ok()
            }
            _ => None,
        };
        let change = EmailChange {
            user_id: user.id,
            email,
            verify,
            notice,
            now_ms: now,
        };
        match self.store.request_email_change(change).await? {
            Ok(()) => {
                self.mail_queued();
                self.audit(
                    client,
                    "email_change",
                    "pending",
                    Some(&user.username),
                    Some(user.id),
                );
                Ok(())
            }
            Err(Taken::Email) | Err(Taken::Username) => Err(ProfileError::EmailTaken),
        }
    }
}
