//! Authenticator codes on the account page (docs/behaviour.md §13.1): set-up with a confirming
//! code, ten recovery codes shown once, new recovery codes (current password required) and
//! turning codes off (current password and a code). The sign-in's code step is in
//! `code_step.rs`; both share [`SecondFactor`] and [`Accounts::check_factor`].

use super::attempts::Counted;
use super::confirm::ConfirmError;
use super::{Accounts, Client, PasswordInput};
use crate::domain::Username;
use crate::security::faillock::Reservation;
use crate::security::recovery;
use crate::security::totp::TotpSecret;
use crate::security::totp_seal::TotpSealer;
use crate::store::{StoreError, User};

/// A typed second factor: a 6-digit authenticator code (spaces allowed, as apps show
/// "123 456") or a recovery code (by its hash). Anything else is no code at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    Totp(String),
    Recovery([u8; 32]),
}

impl SecondFactor {
    pub fn parse(typed: &str) -> Option<Self> {
        let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == crate::security::totp::DIGITS
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(Self::Totp(digits));
        }
        recovery::hash(typed).map(Self::Recovery)
    }
}

/// A set-up waiting for its confirming code: what the page shows.
pub struct TotpSetUp {
    pub secret: TotpSecret,
    pub otpauth_uri: String,
}

/// Why a two-step change on the account page was refused.
#[derive(Debug, thiserror::Error)]
pub enum TwoStepError {
    /// Codes are already on (set-up) or off (new codes, turning off).
    #[error("codes are already on")]
    AlreadyOn,
    #[error("codes are off")]
    NotOn,
    /// No set-up to confirm (or it was replaced).
    #[error("no set-up to confirm")]
    NoSetUp,
    /// No code was typed.
    #[error("no code")]
    MissingCode,
    /// The code is wrong, already used, or not a code.
    #[error("wrong code")]
    WrongCode,
    /// The stored secret does not open with the site key (a changed key without
    /// `gatehouse key rotate`).
    #[error("the stored secret does not open")]
    Unsealable,
    /// The current password was refused.
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the issuer is called in authenticator apps.
pub const ISSUER: &str = "Gatehouse";

/// Ten new recovery codes and their hashes.
fn new_recovery_codes() -> (Vec<String>, Vec<[u8; 32]>) {
    let codes = recovery::generate();
    let hashes = codes
        .iter()
        .map(|c| recovery::hash(c).expect("generated codes are well-formed"))
        .collect();
    (codes, hashes)
}

impl Accounts {
    pub(super) fn totp_sealer(&self) -> TotpSealer {
        TotpSealer::new(&self.key)
    }

    /// The Unix second the codes are checked at.
    pub(super) fn totp_now(&self) -> u64 {
        (self.now_ms().max(0) / 1000) as u64
    }

    /// The user's secret and whether codes are on; `None` when there is none.
    async fn stored_secret(
        &self,
        user_id: i64,
    ) -> Result<Option<(TotpSecret, bool)>, TwoStepError> {
        let state = self.store.two_step_state(user_id).await?;
        let Some(t) = state.totp else {
            return Ok(None);
        };
        let secret = self
            .totp_sealer()
            .open(user_id, &t.sealed_secret)
            .map_err(|_| {
                tracing::warn!(
                    user_id,
                    "a stored TOTP secret does not open with the site key"
                );
                TwoStepError::Unsealable
            })?;
        Ok(Some((secret, t.enabled_at_ms.is_some())))
    }

    fn set_up_view(&self, user: &User, secret: TotpSecret) -> TotpSetUp {
        let otpauth_uri = secret.otpauth_uri(ISSUER, &user.username);
        TotpSetUp {
            secret,
            otpauth_uri,
        }
    }

    /// Starts (or restarts) a set-up: a new secret, stored sealed and off until confirmed.
    pub async fn begin_totp(&self, user: &User) -> Result<TotpSetUp, TwoStepError> {
        let secret = TotpSecret::generate();
        let sealed = self.totp_sealer().seal(user.id, &secret);
        if !self
            .store
            .begin_totp(user.id, sealed, self.now_ms())
            .await?
        {
            return Err(TwoStepError::AlreadyOn);
        }
        Ok(self.set_up_view(user, secret))
    }

    /// The set-up waiting for confirmation, if there is one.
    pub async fn pending_totp(&self, user: &User) -> Result<Option<TotpSetUp>, TwoStepError> {
        Ok(match self.stored_secret(user.id).await? {
            Some((secret, false)) => Some(self.set_up_view(user, secret)),
            _ => None,
        })
    }

    /// Turns codes on with a current code from the app; returns the ten recovery codes, to be
    /// shown once. The code's time step counts as used.
    pub async fn confirm_totp(
        &self,
        user: &User,
        code: &str,
        client: &Client,
    ) -> Result<Vec<String>, TwoStepError> {
        if code.trim().is_empty() {
            return Err(TwoStepError::MissingCode);
        }
        let secret = match self.stored_secret(user.id).await? {
            Some((secret, false)) => secret,
            Some((_, true)) => return Err(TwoStepError::AlreadyOn),
            None => return Err(TwoStepError::NoSetUp),
        };
        let Some(SecondFactor::Totp(code)) = SecondFactor::parse(code) else {
            return Err(TwoStepError::WrongCode);
        };
        let Some(step) = secret.verify(&code, self.totp_now()) else {
            return Err(TwoStepError::WrongCode);
        };
        let (codes, hashes) = new_recovery_codes();
        if !self
            .store
            .confirm_totp(user.id, step as i64, hashes, self.now_ms())
            .await?
        {
            return Err(TwoStepError::NoSetUp);
        }
        self.audit(client, "2fa", "on", Some(&user.username), Some(user.id));
        tracing::info!(event = "2fa", username = %user.username, outcome = "on", "two-step sign-in turned on");
        Ok(codes)
    }

    /// Replaces every recovery code, after the current password.
    pub async fn renew_recovery_codes(
        &self,
        user: &User,
        current: PasswordInput<'_>,
        client: &Client,
    ) -> Result<Vec<String>, TwoStepError> {
        if !self.store.two_step_state(user.id).await?.enabled() {
            return Err(TwoStepError::NotOn);
        }
        self.confirm_password(user, current, client, "recovery_codes")
            .await?;
        let (codes, hashes) = new_recovery_codes();
        if !self
            .store
            .replace_recovery_codes(user.id, hashes, self.now_ms())
            .await?
        {
            return Err(TwoStepError::NotOn);
        }
        self.audit(
            client,
            "recovery_codes",
            "renewed",
            Some(&user.username),
            Some(user.id),
        );
        Ok(codes)
    }

    /// Turns codes off, after the current password and a code (from the app, or a recovery
    /// code); the recovery codes and pending sign-ins go too.
    pub async fn turn_off_totp(
        &self,
        user: &User,
        current: PasswordInput<'_>,
        code: &str,
        client: &Client,
    ) -> Result<(), TwoStepError> {
        if !self.store.two_step_state(user.id).await?.enabled() {
            return Err(TwoStepError::NotOn);
        }
        if code.trim().is_empty() {
            return Err(TwoStepError::MissingCode);
        }
        // The password clears nothing here; the code is counted like a sign-in's code step,
        // so a known password buys no more than the lock's guesses at the code.
        self.check_current_password(user, current, client, "2fa_off", false)
            .await?;
        let username = Username::parse(&user.username)
            .map_err(|_| TwoStepError::Confirm(ConfirmError::BadStoredName))?;
        let creds = self.store.credentials_by_id(user.id).await?;
        let device = match (client.device.as_deref(), &creds) {
            (Some(token), Some(c)) => crate::security::device::verify(
                &self.key,
                token,
                user.id,
                c.password_changed_ms,
                self.now_ms(),
            ),
            _ => None,
        };
        let counted = Counted::new(self, Some(username), device);
        let name = Some(user.username.as_str());
        let reserved = counted
            .reserve(client, "2fa_off", name)
            .await
            .map_err(|r| TwoStepError::Confirm(r.into()))?;
        match reserved {
            Reservation::Proceed => {}
            Reservation::Locked { retry_after } => {
                self.audit(client, "2fa_off", "locked", name, Some(user.id));
                return Err(TwoStepError::Confirm(ConfirmError::Locked { retry_after }));
            }
            Reservation::Full { retry_after } => {
                counted.release().await;
                return Err(TwoStepError::Confirm(ConfirmError::Full { retry_after }));
            }
        }
        let right = match SecondFactor::parse(code) {
            Some(factor) => {
                let checked = self
                    .check_factor(user.id, &user.username, &factor, client)
                    .await;
                counted.release_on_err(checked).await?
            }
            None => false,
        };
        if !right {
            self.audit(client, "2fa_off", "wrong_code", name, Some(user.id));
            return Err(TwoStepError::WrongCode);
        }
        counted.succeeded().await;
        self.store.turn_off_totp(user.id).await?;
        self.audit(client, "2fa", "off", Some(&user.username), Some(user.id));
        tracing::info!(event = "2fa", username = %user.username, outcome = "off", "two-step sign-in turned off");
        Ok(())
    }

    /// Whether `factor` is right for the user, spending it: an authenticator code's time step
    /// is recorded (so it never works twice), a recovery code is used up (audited).
    pub(super) async fn check_factor(
        &self,
        user_id: i64,
        username: &str,
        factor: &SecondFactor,
        client: &Client,
    ) -> Result<bool, TwoStepError> {
        match factor {
            SecondFactor::Totp(code) => {
                // A secret the site key cannot open (a replaced key without `gatehouse key
                // rotate`, already logged) matches no code: recovery codes still work.
                let stored = match self.stored_secret(user_id).await {
                    Err(TwoStepError::Unsealable) => None,
                    other => other?,
                };
                let Some((secret, true)) = stored else {
                    return Ok(false);
                };
                match secret.verify(code, self.totp_now()) {
                    Some(step) => Ok(self.store.accept_totp_step(user_id, step as i64).await?),
                    None => Ok(false),
                }
            }
            SecondFactor::Recovery(hash) => {
                let used = self
                    .store
                    .use_recovery_code(user_id, *hash, self.now_ms())
                    .await?;
                if used {
                    self.audit(
                        client,
                        "recovery_codes",
                        "used",
                        Some(username),
                        Some(user_id),
                    );
                }
                Ok(used)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SecondFactor;

    #[test]
    fn codes_parse_as_six_digits_or_a_recovery_code() {
        assert_eq!(
            SecondFactor::parse(" 123 456 "),
            Some(SecondFactor::Totp("123456".into()))
        );
        assert_eq!(
            SecondFactor::parse("10456-789ab"),
            crate::security::recovery::hash("10456789AB").map(SecondFactor::Recovery)
        );
        for bad in ["", "12345", "1234567", "abcdef", "10456-789AU"] {
            assert_eq!(SecondFactor::parse(bad), None, "{bad:?}");
        }
    }
}
