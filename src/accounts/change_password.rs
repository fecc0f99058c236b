//! Changing the signed-in user's password: lock, field rules, then one KDF job that verifies
//! the current password and hashes the new one; the write ends every other session.

use std::time::Duration;

use super::attempts::{Counted, Refused};
use super::sign_in::checked_or_unguessable;
use super::sign_up::new_password_digest;
use super::{Accounts, Client, FieldErrors, PasswordInput, Problem, SignedIn};
use crate::domain::Username;
use crate::security::digest::PasswordDigest;
use crate::security::faillock::Reservation;
use crate::security::password::KdfError;
use crate::security::session::SessionId;
use crate::store::{NewSession, StoreError, User};

/// Why a password was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Too many wrong current passwords.
    #[error("locked for {retry_after:?}")]
    Locked { retry_after: Duration },
    #[error("invalid fields")]
    Invalid(FieldErrors),
    /// The current password is wrong (counted toward the lock).
    #[error("wrong current password")]
    WrongPassword,
    /// The lock's table is full.
    #[error("lock table full")]
    Full { retry_after: Duration },
    /// The user is gone (deleted or disabled) since the session was read.
    #[error("no such user")]
    NoSuchUser,
    /// The password changed elsewhere (or the user was disabled) between read and write.
    #[error("changed elsewhere")]
    ChangedElsewhere,
    /// The stored username does not parse: a damaged database.
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
    /// Changes `user`'s password; on success every other session has ended and the returned
    /// one replaces the caller's.
    pub async fn change_password(
        &self,
        user: &User,
        current: PasswordInput<'_>,
        new: PasswordInput<'_>,
        client: &Client,
    ) -> Result<SignedIn, ChangeError> {
        let username = Username::parse(&user.username).map_err(|_| ChangeError::BadStoredName)?;
        let name = Some(username.as_str());
        self.admit(client, "password_change", name).await?;
        let Some(creds) = self.store.credentials_by_id(user.id).await? else {
            return Err(ChangeError::NoSuchUser);
        };
        // As on sign-in: this browser's valid device token moves the count to its own lock, so
        // a username locked by someone else does not stop its owner from changing the password.
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
        let reserved = counted.reserve(client, "password_change", name).await?;
        match reserved {
            Reservation::Proceed => {}
            Reservation::Locked { retry_after } => {
                self.audit(client, "password_change", "locked", name, Some(user.id));
                tracing::debug!(event = "password_change", username = %username, outcome = "locked", "refused: locked");
                return Err(ChangeError::Locked { retry_after });
            }
            Reservation::Full { retry_after } => {
                counted.release().await;
                return Err(ChangeError::Full { retry_after });
            }
        }
        let mut errors = FieldErrors::default();
        let current_digest = match current {
            PasswordInput::Digest(d) => PasswordDigest::from_wire(d)
                .map_err(|e| errors.reject("current_password_digest", e.to_string()))
                .ok(),
            PasswordInput::Plain { password, .. } => Some(checked_or_unguessable(
                PasswordDigest::from_typed(&user.username, password),
            )),
            PasswordInput::Missing => {
                errors.add("current_password", Problem::MissingCurrentPassword);
                None
            }
        };
        let new_digest = new_password_digest(
            &user.username,
            &new,
            ["new_password", "new_password_repeat", "new_password_digest"],
            &mut errors,
        );
        let (Some(current_digest), Some(new_digest)) = (current_digest, new_digest) else {
            counted.release().await;
            return Err(ChangeError::Invalid(errors));
        };
        let spent = self.spend_kdf(client, "password_change", name).await;
        counted.release_on_err(spent).await?;
        let old_hash = creds.password_hash.clone();
        let outcome = self
            .kdf
            .run(move |kdf| {
                if kdf.verify(&current_digest, &old_hash).unwrap_or(false) {
                    kdf.hash(&new_digest).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await
            .and_then(|hashed| hashed);
        let outcome = counted.release_on_err(outcome).await?;
        let Some(new_hash) = outcome else {
            self.audit(client, "password_change", "failed", name, Some(user.id));
            tracing::info!(event = "password_change", username = %username, outcome = "wrong_password", "password change refused");
            return Err(ChangeError::WrongPassword);
        };
        counted.succeeded().await;

        let id = SessionId::generate();
        // Strictly later than the old change time, so "changed since" is never ambiguous.
        let now = self.now_ms().max(creds.password_changed_ms + 1);
        let expires = now + self.sessions.max.as_millis() as i64;
        let session = NewSession {
            token_hash: id.hash(),
            user_id: user.id,
            password_changed_ms: now,
            now_ms: now,
            expires_ms: expires,
            user_agent: client.user_agent.clone(),
            ip: client.ip.clone(),
            replaces: None,
        };
        let changed = self
            .store
            .change_password(creds.password_changed_ms, new_hash, session)
            .await?;
        if changed.is_none() {
            return Err(ChangeError::ChangedElsewhere);
        }
        tracing::info!(event = "password_change", username = %username, outcome = "ok", "password changed; other sessions ended");
        self.audit(client, "password_change", "ok", name, Some(user.id));
        Ok(SignedIn {
            username: username.as_str().to_owned(),
            session: id,
            // Every older device token died with the old password; this browser gets a new one.
            device_token: crate::security::device::issue(&self.key, user.id, now, now),
        })
    }
}

/// Why an administrator's password reset did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("invalid fields")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    /// Sets `username`'s password without the current one (the admin's `user set-password`):
    /// the new password's rules, the KDF, then one write that ends every session. `None` when
    /// there is no such user.
    pub async fn reset_password(
        &self,
        username: &Username,
        new: PasswordInput<'_>,
    ) -> Result<Option<i64>, ResetError> {
        let mut errors = FieldErrors::default();
        let Some(digest) = new_password_digest(
            username.as_str(),
            &new,
            ["new_password", "new_password_repeat", "new_password_digest"],
            &mut errors,
        ) else {
            return Err(ResetError::Invalid(errors));
        };
        let hash = self.kdf.run(move |kdf| kdf.hash(&digest)).await??;
        Ok(self
            .store
            .set_password(username, &hash, self.now_ms())
            .await?)
    }
}
