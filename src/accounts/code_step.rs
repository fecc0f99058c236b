//! The sign-in's second step for a user with authenticator codes on (docs/behaviour.md
//! §13.1). A right password opens no session and clears nothing: it leaves a server-side
//! pending sign-in (five minutes; the browser holds a random id, the database its SHA-256).
//! The code step reserves a failure in §4's lock before it checks, exactly as a password
//! attempt does, so a known password buys no more guesses at the code than the lock allows;
//! only a right code releases it, opens the session and issues the device cookie.

use std::time::Duration;

use super::attempts::{Counted, Refused};
use super::two_step::{SecondFactor, TwoStepError};
use super::{Accounts, Client, SignedIn};
use crate::audit::EventExt;
use crate::domain::Username;
use crate::security::faillock::Reservation;
use crate::security::session::SessionId;
use crate::store::StoreError;
use crate::store::two_step::{NewPending, Pending};

/// How long a pending sign-in waits for its code.
pub const PENDING_TTL: Duration = Duration::from_secs(5 * 60);

/// A password step that passed for a user with codes on: only the code step can use it.
#[derive(Debug)]
pub struct PasswordPassed {
    user_id: i64,
    username: Username,
    password_changed_ms: i64,
}

/// Why the code step opened no session.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// No live pending sign-in (expired, used, or ended by a password change): start again.
    #[error("no pending sign-in")]
    Expired,
    /// No code was typed (nothing counted).
    #[error("no code")]
    MissingCode,
    /// Wrong, already used, or not a code (counted toward the lock).
    #[error("wrong code")]
    WrongCode,
    #[error("locked for {retry_after:?}")]
    Locked { retry_after: Duration },
    #[error("lock table full")]
    Full { retry_after: Duration },
    #[error("the stored secret does not open")]
    Unsealable,
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TwoStepError> for CodeError {
    fn from(e: TwoStepError) -> Self {
        match e {
            TwoStepError::Store(e) => CodeError::Store(e),
            TwoStepError::Unsealable => CodeError::Unsealable,
            _ => CodeError::WrongCode,
        }
    }
}

impl Accounts {
    pub(super) fn password_passed(
        &self,
        user_id: i64,
        username: Username,
        password_changed_ms: i64,
    ) -> PasswordPassed {
        PasswordPassed {
            user_id,
            username,
            password_changed_ms,
        }
    }

    /// Stores the pending sign-in of a passed password step, with the return address the
    /// sign-in form carried; the id is for the browser's cookie.
    pub async fn begin_code_step(
        &self,
        passed: PasswordPassed,
        next_url: Option<String>,
    ) -> Result<SessionId, StoreError> {
        let id = SessionId::generate();
        let now = self.now_ms();
        self.store
            .create_pending(NewPending {
                hash: id.hash(),
                user_id: passed.user_id,
                password_changed_ms: passed.password_changed_ms,
                next_url,
                now_ms: now,
                expires_ms: now + PENDING_TTL.as_millis() as i64,
            })
            .await?;
        Ok(id)
    }

    /// The live pending sign-in a browser's cookie names.
    pub async fn pending_sign_in(&self, id: &SessionId) -> Result<Option<Pending>, StoreError> {
        self.store.read_pending(id.hash(), self.now_ms()).await
    }

    /// The code step of the page: the pending sign-in's user must still be active with an
    /// unchanged password. On success the pending record is gone and its return address comes
    /// back with the new session.
    pub async fn sign_in_code(
        &self,
        id: &SessionId,
        code: &str,
        client: &Client,
        replaces: Option<[u8; 32]>,
    ) -> Result<(SignedIn, Option<String>), CodeError> {
        let Some(pending) = self.pending_sign_in(id).await? else {
            return Err(CodeError::Expired);
        };
        let Some(user) = self.store.user_details_by_id(pending.user_id).await? else {
            return Err(CodeError::Expired);
        };
        let username = Username::parse(&user.username).map_err(|_| CodeError::Expired)?;
        let passed = self.password_passed(user.id, username, pending.password_changed_ms);
        let signed_in = self
            .code_step(passed, code, client, replaces, Some(id.hash()))
            .await?;
        Ok((signed_in, pending.next_url))
    }

    /// The code step of the JSON API: the password and the code in one request.
    pub async fn sign_in_with_code(
        &self,
        passed: PasswordPassed,
        code: &str,
        client: &Client,
        replaces: Option<[u8; 32]>,
    ) -> Result<SignedIn, CodeError> {
        self.code_step(passed, code, client, replaces, None).await
    }

    async fn code_step(
        &self,
        passed: PasswordPassed,
        code: &str,
        client: &Client,
        replaces: Option<[u8; 32]>,
        pending: Option<[u8; 32]>,
    ) -> Result<SignedIn, CodeError> {
        let PasswordPassed {
            user_id,
            username,
            password_changed_ms,
        } = passed;
        let name = Some(username.as_str());
        self.admit(client, "sign_in", name).await?;
        let creds = self.store.credentials_by_id(user_id).await?;
        let Some(creds) =
            creds.filter(|c| c.active && c.password_changed_ms == password_changed_ms)
        else {
            if let Some(hash) = pending {
                self.store.take_pending(hash, self.now_ms()).await?;
            }
            return Err(CodeError::Expired);
        };
        let now = self.now_ms();
        let device = client.device.as_deref().and_then(|token| {
            crate::security::device::verify(&self.key, token, user_id, password_changed_ms, now)
        });
        let counted = Counted::new(self, Some(username.clone()), device);
        counted.forgive(creds.unlocked_ms).await;
        match counted.reserve(client, "sign_in", name).await? {
            Reservation::Proceed => {}
            Reservation::Locked { retry_after } => {
                self.audit.record(
                    self.event("sign_in", "locked", client)
                        .user(name, Some(user_id))
                        .detail("code step"),
                );
                return Err(CodeError::Locked { retry_after });
            }
            Reservation::Full { retry_after } => {
                counted.release().await;
                return Err(CodeError::Full { retry_after });
            }
        }
        if code.trim().is_empty() {
            counted.release().await;
            return Err(CodeError::MissingCode);
        }
        let right = match SecondFactor::parse(code) {
            Some(factor) => {
                let checked = self
                    .check_factor(user_id, username.as_str(), &factor, client)
                    .await;
                counted.release_on_err(checked).await?
            }
            None => false,
        };
        if !right {
            // The reserved failure stays counted.
            self.audit.record(
                self.event("sign_in", "failed", client)
                    .user(name, Some(user_id))
                    .detail("wrong code"),
            );
            tracing::info!(event = "sign_in", username = %username, outcome = "wrong_code", "sign-in code refused");
            return Err(CodeError::WrongCode);
        }
        if let Some(hash) = pending
            && self
                .store
                .take_pending(hash, self.now_ms())
                .await?
                .is_none()
        {
            // Completed (or ended) by another request meanwhile.
            counted.release().await;
            return Err(CodeError::Expired);
        }
        counted.succeeded().await;
        let event = self
            .sign_in_event(client, username.as_str(), user_id)
            .detail("with code");
        let Some(id) = self
            .open_session(user_id, password_changed_ms, client, replaces, event)
            .await?
        else {
            return Err(CodeError::Expired);
        };
        tracing::info!(event = "sign_in", username = %username, outcome = "ok", ip = client.ip.as_deref().unwrap_or("-"), "signed in with a code");
        Ok(SignedIn {
            username: username.as_str().to_owned(),
            session: id,
            device_token: crate::security::device::issue(
                &self.key,
                user_id,
                password_changed_ms,
                now,
            ),
        })
    }
}
