//! The fail-lock and the address throttle as the flows see them: async, fallible interfaces
//! over the rules in [`super::faillock`] and [`super::throttle`], so that a shared
//! implementation (one database for several servers) can be added as another variant without
//! touching the flows. See `docs/design.md`, "Lock and throttle interfaces". Two variants
//! exist: `Memory` (this process's tables, for SQLite) and `Postgres` (tables in the site's
//! database, shared by every instance: [`crate::store::postgres::limits`]).
//!
//! Enums rather than traits: the state holds one of each without generics, dispatch is static,
//! and no crate is needed to put `async fn`s behind `dyn`. Each call takes the wall-clock `now`
//! from the caller's [`crate::clock::Clock`]; whether the local KDF pool is busy (`contended`)
//! stays an argument computed by the caller, as it is about this process only.
//!
//! Decisions (`reserve`, `admit`, `spend_kdf`, `is_locked`) return [`LimitsError`] when the
//! implementation cannot be asked: the caller refuses (fails closed). Bookkeeping after the
//! fact (`release`, `succeeded`, `forgive`, `failed`) logs its own errors: a lost release or
//! success leaves a failure counted, which errs on the safe side.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use super::faillock::{FailLock, Reservation};
use super::throttle::{AddressGuard, Refusal, Reserved};
use crate::clock::Timestamp;
use crate::store::postgres::limits::{PgAddressGuard, PgFailLock};

/// A lock or throttle implementation could not be asked (a shared one unreachable).
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("the attempt limits are unavailable: {0}")]
    Unavailable(String),
}

/// How long to tell a client to wait when the limits are unavailable.
pub const UNAVAILABLE_RETRY: Duration = Duration::from_secs(2);

/// A fail-lock keyed by `K` (usernames, device ids).
pub enum AttemptLock<K> {
    /// This process's bounded table.
    Memory(FailLock<K>),
    /// The `fail_lock` table, shared by every instance on the database.
    Postgres(PgFailLock),
}

impl<K: Eq + Hash + Clone + AsRef<str>> AttemptLock<K> {
    /// Checks the lock and reserves one failure for this attempt, atomically: N parallel
    /// guesses count as N. `Full` reserves nothing.
    pub async fn reserve(&self, key: &K, now: Timestamp) -> Result<Reservation, LimitsError> {
        match self {
            AttemptLock::Memory(l) => Ok(l.reserve(key, now)),
            AttemptLock::Postgres(l) => l.reserve(key.as_ref(), now).await,
        }
    }

    /// Whether `key` is locked now, counting nothing.
    pub async fn is_locked(&self, key: &K, now: Timestamp) -> Result<bool, LimitsError> {
        match self {
            AttemptLock::Memory(l) => Ok(l.is_locked(key, now)),
            AttemptLock::Postgres(l) => l.is_locked(key.as_ref(), now).await,
        }
    }

    /// An admin unlocked at `unlocked_ms`: forget a run of failures that began before then.
    pub async fn forgive(&self, key: &K, unlocked_ms: i64) {
        match self {
            AttemptLock::Memory(l) => l.forgive(key, unlocked_ms),
            AttemptLock::Postgres(l) => l.forgive(key.as_ref(), unlocked_ms).await,
        }
    }

    /// A correct password: forget the record.
    pub async fn succeeded(&self, key: &K) {
        match self {
            AttemptLock::Memory(l) => l.succeeded(key),
            AttemptLock::Postgres(l) => l.succeeded(key.as_ref()).await,
        }
    }

    /// Gives back one failure reserved for an attempt that never checked the password.
    pub async fn release(&self, key: &K) {
        match self {
            AttemptLock::Memory(l) => l.release(key),
            AttemptLock::Postgres(l) => l.release(key.as_ref()).await,
        }
    }

    /// Drops expired records (housekeeping).
    pub async fn sweep(&self, now: Timestamp) {
        match self {
            AttemptLock::Memory(l) => l.sweep(now),
            AttemptLock::Postgres(l) => l.sweep(now).await,
        }
    }

    /// Records held, for the housekeeping log line.
    pub async fn records(&self) -> usize {
        match self {
            AttemptLock::Memory(l) => l.len(),
            AttemptLock::Postgres(l) => l.records().await,
        }
    }

    pub fn window(&self) -> Duration {
        match self {
            AttemptLock::Memory(l) => l.window(),
            AttemptLock::Postgres(l) => l.window(),
        }
    }
}

/// The per-address failure throttle and KDF budget.
pub enum AddressLimits {
    /// This process's bounded tables.
    Memory(AddressGuard),
    /// The `address_failures` and `kdf_budget` tables, shared by every instance.
    Postgres(PgAddressGuard),
}

impl AddressLimits {
    /// The early verdict, counting nothing.
    pub async fn admit(
        &self,
        ip: IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Result<(), Refusal>, LimitsError> {
        match self {
            AddressLimits::Memory(g) => Ok(g.admit(ip, now, contended)),
            AddressLimits::Postgres(g) => g.admit(ip, now, contended).await,
        }
    }

    /// The authoritative verdict, atomic with reserving one failure.
    pub async fn reserve(
        &self,
        ip: IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Result<Reserved, Refusal>, LimitsError> {
        match self {
            AddressLimits::Memory(g) => Ok(g.reserve(ip, now, contended)),
            AddressLimits::Postgres(g) => g.reserve(ip, now, contended).await,
        }
    }

    /// Gives back a failure from [`AddressLimits::reserve`].
    pub async fn release(&self, reserved: Reserved) {
        match self {
            AddressLimits::Memory(g) => g.release(reserved),
            AddressLimits::Postgres(g) => g.release(reserved).await,
        }
    }

    /// Counts one failure that ran no KDF.
    pub async fn failed(&self, ip: IpAddr, now: Timestamp) {
        match self {
            AddressLimits::Memory(g) => g.failed(ip, now),
            AddressLimits::Postgres(g) => g.failed(ip, now).await,
        }
    }

    /// Takes one Argon2 run from the address's budget.
    pub async fn spend_kdf(
        &self,
        ip: IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Result<(), Refusal>, LimitsError> {
        match self {
            AddressLimits::Memory(g) => Ok(g.spend_kdf(ip, now, contended)),
            AddressLimits::Postgres(g) => g.spend_kdf(ip, now, contended).await,
        }
    }

    /// Forgets expired failure records and full buckets (housekeeping).
    pub async fn sweep(&self, now: Timestamp) {
        match self {
            AddressLimits::Memory(g) => g.sweep(now),
            AddressLimits::Postgres(g) => g.sweep(now).await,
        }
    }

    /// (failure records, KDF buckets) held, for the housekeeping log line.
    pub async fn sizes(&self) -> (usize, usize) {
        match self {
            AddressLimits::Memory(g) => g.sizes(),
            AddressLimits::Postgres(g) => g.sizes().await,
        }
    }
}

#[cfg(test)]
mod tests;
