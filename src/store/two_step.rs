//! Two-step sign-in in the storage interface (docs/behaviour.md §13.1): a user's sealed TOTP
//! secret and the last time step it accepted, single-use recovery code hashes, and the pending
//! sign-ins waiting for their code. Every check that must hold across instances is one atomic
//! statement: a time step is accepted by `UPDATE … WHERE last_step < step`, a recovery code is
//! spent by `UPDATE … WHERE used_at IS NULL`, a pending sign-in is taken by one `DELETE`.

use super::{Result, Store};

/// A user's authenticator secret as stored (sealed by the flows; the store never opens it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    pub sealed_secret: Vec<u8>,
    /// `None` while the set-up waits for its confirming code.
    pub enabled_at_ms: Option<i64>,
    /// The last time step accepted (-1: none yet).
    pub last_step: i64,
}

/// What the account page and `gatehouse user show` say about a user's second factor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TwoStepState {
    pub totp: Option<TotpRecord>,
    /// Unused recovery codes.
    pub recovery_left: i64,
}

impl TwoStepState {
    /// Whether sign-in asks for a code.
    pub fn enabled(&self) -> bool {
        self.totp
            .as_ref()
            .is_some_and(|t| t.enabled_at_ms.is_some())
    }
}

/// A sign-in whose password step passed, waiting for its code: stored under SHA-256 of the
/// browser's random id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPending {
    pub hash: [u8; 32],
    pub user_id: i64,
    /// The user's password change time when the password was checked: the code step opens a
    /// session only while it is unchanged.
    pub password_changed_ms: i64,
    /// The signed return address, as the sign-in form carried it.
    pub next_url: Option<String>,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// A live pending sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub user_id: i64,
    pub password_changed_ms: i64,
    pub next_url: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl Store {
    /// Stores a new, unconfirmed secret for `user_id`, replacing an unconfirmed one. `false`
    /// (nothing changed) when codes are already on.
    pub async fn begin_totp(&self, user_id: i64, sealed: Vec<u8>, now_ms: i64) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.begin_totp(user_id, &sealed, now_ms)).await,
                 p => p.begin_totp(user_id, sealed, now_ms).await)
    }

    /// Turns the unconfirmed secret on, records `step` (the confirming code's) as used and
    /// stores the recovery code hashes in place of any old ones, in one transaction. `false`
    /// when there was no unconfirmed secret (already on, or never set up).
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        step: i64,
        recovery: Vec<[u8; 32]>,
        now_ms: i64,
    ) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.confirm_totp(user_id, step, &recovery, now_ms)).await,
                 p => p.confirm_totp(user_id, step, recovery, now_ms).await)
    }

    /// The user's secret (if any) and unused recovery codes.
    pub async fn two_step_state(&self, user_id: i64) -> Result<TwoStepState> {
        backend!(self, s => s.blocking(move |s| s.two_step_state(user_id)).await,
                 p => p.two_step_state(user_id).await)
    }

    /// Records `step` as used if it is later than every step accepted before and codes are on:
    /// `true` exactly once per step, whichever instance asks (replay refused).
    pub async fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.accept_totp_step(user_id, step)).await,
                 p => p.accept_totp_step(user_id, step).await)
    }

    /// Spends an unused recovery code: `true` exactly once per code.
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        hash: [u8; 32],
        now_ms: i64,
    ) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.use_recovery_code(user_id, &hash, now_ms)).await,
                 p => p.use_recovery_code(user_id, hash, now_ms).await)
    }

    /// Replaces every recovery code of a user whose codes are on; `false` when they are off.
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        recovery: Vec<[u8; 32]>,
        now_ms: i64,
    ) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.replace_recovery_codes(user_id, &recovery, now_ms)).await,
                 p => p.replace_recovery_codes(user_id, recovery, now_ms).await)
    }

    /// Turns codes off: deletes the secret, the recovery codes and pending sign-ins. `true`
    /// when there was a secret.
    pub async fn turn_off_totp(&self, user_id: i64) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.turn_off_totp(user_id)).await,
                 p => p.turn_off_totp(user_id).await)
    }

    /// `gatehouse user reset-2fa`: removes every second factor (secret, recovery codes,
    /// passkeys, ceremonies) and pending sign-ins. `true` when there was anything to remove.
    pub async fn reset_second_factors(&self, user_id: i64) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.reset_second_factors(user_id)).await,
                 p => p.reset_second_factors(user_id).await)
    }

    /// Stores a pending sign-in.
    pub async fn create_pending(&self, pending: NewPending) -> Result<()> {
        backend!(self, s => s.blocking(move |s| s.create_pending(&pending)).await,
                 p => p.create_pending(pending).await)
    }

    /// The live pending sign-in with this hash; an expired one is deleted and `None`.
    pub async fn read_pending(&self, hash: [u8; 32], now_ms: i64) -> Result<Option<Pending>> {
        backend!(self, s => s.blocking(move |s| s.pending(&hash, now_ms, false)).await,
                 p => p.pending(hash, now_ms, false).await)
    }

    /// Deletes the pending sign-in and returns it if it was live: one caller wins.
    pub async fn take_pending(&self, hash: [u8; 32], now_ms: i64) -> Result<Option<Pending>> {
        backend!(self, s => s.blocking(move |s| s.pending(&hash, now_ms, true)).await,
                 p => p.pending(hash, now_ms, true).await)
    }

    /// Deletes expired pending sign-ins (housekeeping). Returns how many.
    pub async fn purge_expired_pending(&self, now_ms: i64) -> Result<usize> {
        backend!(self, s => s.blocking(move |s| s.purge_expired_pending(now_ms)).await,
                 p => p.purge_expired_pending(now_ms).await)
    }
}

#[cfg(test)]
#[path = "two_step_tests.rs"]
mod tests;
