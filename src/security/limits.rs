//! The fail-lock and the address throttle as the flows see them: async, fallible interfaces
//! over the rules in [`super::faillock`] and [`super::throttle`], so that a shared
//! implementation (one database for several servers) can be added as another variant without
//! touching the flows. See `docs/design.md`, "Lock and throttle interfaces".
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
}

impl<K: Eq + Hash + Clone> AttemptLock<K> {
    /// Checks the lock and reserves one failure for this attempt, atomically: N parallel
    /// guesses count as N. `Full` reserves nothing.
    pub async fn reserve(&self, key: &K, now: Timestamp) -> Result<Reservation, LimitsError> {
        match self {
            AttemptLock::Memory(l) => Ok(l.reserve(key, now)),
        }
    }

    /// Whether `key` is locked now, counting nothing.
    pub async fn is_locked(&self, key: &K, now: Timestamp) -> Result<bool, LimitsError> {
        match self {
            AttemptLock::Memory(l) => Ok(l.is_locked(key, now)),
        }
    }

    /// An admin unlocked at `unlocked_ms`: forget a run of failures that began before then.
    pub async fn forgive(&self, key: &K, unlocked_ms: i64) {
        match self {
            AttemptLock::Memory(l) => l.forgive(key, unlocked_ms),
        }
    }

    /// A correct password: forget the record.
    pub async fn succeeded(&self, key: &K) {
        match self {
            AttemptLock::Memory(l) => l.succeeded(key),
        }
    }

    /// Gives back one failure reserved for an attempt that never checked the password.
    pub async fn release(&self, key: &K) {
        match self {
            AttemptLock::Memory(l) => l.release(key),
        }
    }

    /// Drops expired records (housekeeping).
    pub async fn sweep(&self, now: Timestamp) {
        match self {
            AttemptLock::Memory(l) => l.sweep(now),
        }
    }

    /// Records held, for the housekeeping log line.
    pub async fn records(&self) -> usize {
        match self {
            AttemptLock::Memory(l) => l.len(),
        }
    }

    pub fn window(&self) -> Duration {
        match self {
            AttemptLock::Memory(l) => l.window(),
        }
    }
}

/// The per-address failure throttle and KDF budget.
pub enum AddressLimits {
    /// This process's bounded tables.
    Memory(AddressGuard),
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
        }
    }

    /// Gives back a failure from [`AddressLimits::reserve`].
    pub async fn release(&self, reserved: Reserved) {
        match self {
            AddressLimits::Memory(g) => g.release(reserved),
        }
    }

    /// Counts one failure that ran no KDF.
    pub async fn failed(&self, ip: IpAddr, now: Timestamp) {
        match self {
            AddressLimits::Memory(g) => g.failed(ip, now),
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
        }
    }

    /// Forgets expired failure records and full buckets (housekeeping).
    pub async fn sweep(&self, now: Timestamp) {
        match self {
            AddressLimits::Memory(g) => g.sweep(now),
        }
    }

    /// (failure records, KDF buckets) held, for the housekeeping log line.
    pub async fn sizes(&self) -> (usize, usize) {
        match self {
            AddressLimits::Memory(g) => g.sizes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const W: Duration = Duration::from_secs(600);

    fn clock() -> ManualClock {
        ManualClock::new(Timestamp::from_ms(1_795_000_000_000))
    }

    #[tokio::test]
    async fn the_lock_follows_the_injected_clock() {
        let clock = clock();
        let lock = AttemptLock::Memory(FailLock::new(3, W, 100));
        let k = "device".to_owned();
        for _ in 0..3 {
            assert_eq!(
                lock.reserve(&k, clock.now()).await.unwrap(),
                Reservation::Proceed
            );
        }
        clock.advance(W - Duration::from_millis(1));
        assert!(lock.is_locked(&k, clock.now()).await.unwrap());
        clock.advance(Duration::from_millis(1));
        assert!(!lock.is_locked(&k, clock.now()).await.unwrap());
        // Stale failures restart the count.
        assert_eq!(
            lock.reserve(&k, clock.now()).await.unwrap(),
            Reservation::Proceed
        );
        lock.release(&k).await;
        assert_eq!(lock.records().await, 0);
        // Backwards by an hour and forwards again: nothing is freed early.
        for _ in 0..3 {
            lock.reserve(&k, clock.now()).await.unwrap();
        }
        let locked_at = clock.now();
        clock.rewind(Duration::from_secs(3600));
        assert!(lock.is_locked(&k, clock.now()).await.unwrap());
        clock.set(locked_at + W);
        lock.sweep(clock.now()).await;
        assert_eq!(lock.records().await, 0);
    }

    #[tokio::test]
    async fn the_throttle_follows_the_injected_clock() {
        let clock = clock();
        let limits = AddressLimits::Memory(AddressGuard::new(2, W, 6, 100));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let kept = limits.reserve(a, clock.now(), false).await.unwrap();
        assert!(kept.is_ok());
        let given_back = limits
            .reserve(a, clock.now(), false)
            .await
            .unwrap()
            .unwrap();
        limits.release(given_back).await;
        limits.failed(a, clock.now()).await;
        assert!(matches!(
            limits.admit(a, clock.now(), false).await.unwrap(),
            Err(Refusal::Throttled(_))
        ));
        clock.advance(W);
        assert_eq!(limits.admit(a, clock.now(), false).await.unwrap(), Ok(()));
        // The budget: six runs, then one every ten seconds under contention.
        for _ in 0..6 {
            assert_eq!(
                limits.spend_kdf(a, clock.now(), true).await.unwrap(),
                Ok(())
            );
        }
        assert!(
            limits
                .spend_kdf(a, clock.now(), true)
                .await
                .unwrap()
                .is_err()
        );
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            limits.spend_kdf(a, clock.now(), true).await.unwrap(),
            Ok(())
        );
        clock.advance(W + Duration::from_secs(60));
        limits.sweep(clock.now()).await;
        assert_eq!(limits.sizes().await, (0, 0));
    }
}
