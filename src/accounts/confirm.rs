//! Confirming the signed-in user's current password before a sensitive change (deleting the
//! account, moving it to another email address): the same §4 lock, address limits and KDF as
//! a sign-in, counted under the change's own audit kind. (A password change checks the current
//! password and hashes the new one in one KDF job of its own: `change_password.rs`.)

use std::time::Duration;

use super::attempts::{Counted, Refused};
use super::sign_in::checked_or_unguessable;
use super::{Accounts, Client, FieldErrors, PasswordInput, Problem};
use crate::domain::Username;
use crate::security::digest::PasswordDigest;
use crate::security::faillock::Reservation;
use crate::security::password::KdfError;
use crate::store::{StoreError, User};

/// Why the current password was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("locked for {retry_after:?}")]
    Locked { retry_after: Duration },
    #[error("invalid fields")]
    Invalid(FieldErrors),
    /// Wrong (counted toward the lock).
    #[error("wrong current password")]
    WrongPassword,
    #[error("lock table full")]
    Full { retry_after: Duration },
    /// Deleted or disabled since the session was read.
    #[error("no such user")]
    NoSuchUser,
    #[error("stored username invalid")]
    BadStoredName,
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    /// Checks `current` against `user`'s password under the lock, audited as `kind` when it
    /// fails or is locked out.
    pub(super) async fn confirm_password(
        &self,
        user: &User,
        current: PasswordInput<'_>,
        client: &Client,
        kind: &'static str,
    ) -> Result<(), ConfirmError> {
        self.check_current_password(user, current, client, kind, true)
            .await
    }

    /// [`Self::confirm_password`]; with `clear` false a right password gives its reservation
    /// back without clearing the lock's record, for a change that still needs a second factor
    /// (turning codes off): the password alone must not reset the count of wrong codes.
    pub(super) async fn check_current_password(
        &self,
        user: &User,
        current: PasswordInput<'_>,
        client: &Client,
        kind: &'static str,
        clear: bool,
    ) -> Result<(), ConfirmError> {
        let username = Username::parse(&user.username).map_err(|_| ConfirmError::BadStoredName)?;
        let name = Some(username.as_str());
        self.admit(client, kind, name).await?;
        let Some(creds) = self.store.credentials_by_id(user.id).await? else {
            return Err(ConfirmError::NoSuchUser);
        };
        if !creds.active {
            return Err(ConfirmError::NoSuchUser);
        }
        let device = client.device.as_deref().and_then(|token| {
            crate::security::device::verify(
                &self.key,
                token,
                user.id,
                creds.password_changed_ms,
                self.now_ms(),
            )
        });
        let counted = Counted::new(self, Some(username.clone()), device);
        counted.forgive(creds.unlocked_ms).await;
        match counted.reserve(client, kind, name).await? {
            Reservation::Proceed => {}
            Reservation::Locked { retry_after } => {
                self.audit(client, kind, "locked", name, Some(user.id));
                return Err(ConfirmError::Locked { retry_after });
            }
            Reservation::Full { retry_after } => {
                counted.release().await;
                return Err(ConfirmError::Full { retry_after });
            }
        }
        let digest = match current {
            PasswordInput::Digest(d) => match PasswordDigest::from_wire(d) {
                Ok(d) => d,
                Err(e) => {
                    counted.release().await;
                    let mut errors = FieldErrors::default();
                    errors.reject("current_password_digest", e.to_string());
                    return Err(ConfirmError::Invalid(errors));
                }
            },
            PasswordInput::Plain { password, .. } => {
                checked_or_unguessable(PasswordDigest::from_typed(&user.username, password))
            }
            PasswordInput::Missing => {
                counted.release().await;
                let mut errors = FieldErrors::default();
                errors.add("current_password", Problem::MissingCurrentPassword);
                return Err(ConfirmError::Invalid(errors));
            }
        };
        let spent = self.spend_kdf(client, kind, name).await;
        counted.release_on_err(spent).await?;
        let hash = creds.password_hash.clone();
        let verified = self
            .kdf
            .run(move |kdf| kdf.verify(&digest, &hash))
            .await
            .and_then(|v| v);
        let verified = counted.release_on_err(verified).await?;
        if !verified {
            self.audit(client, kind, "failed", name, Some(user.id));
            tracing::info!(event = kind, username = %username, outcome = "wrong_password", "refused: wrong current password");
            return Err(ConfirmError::WrongPassword);
        }
        if clear {
            counted.succeeded().await;
        } else {
            counted.release().await;
        }
        Ok(())
    }

    /// Deletes the signed-in user's own account after confirming the password: every session
    /// goes with it, the audit trail stays, and the username is retired for good.
    pub async fn delete_account(
        &self,
        user: &User,
        current: PasswordInput<'_>,
        client: &Client,
    ) -> Result<(), ConfirmError> {
        self.confirm_password(user, current, client, "account_delete")
            .await?;
        if !self.store.delete_user_by_id(user.id).await? {
            return Err(ConfirmError::NoSuchUser);
        }
        self.audit(
            client,
            "account_delete",
            "ok",
            Some(&user.username),
            Some(user.id),
        );
        tracing::info!(event = "account_delete", username = %user.username, outcome = "ok", "account deleted by its owner");
        Ok(())
    }
}
