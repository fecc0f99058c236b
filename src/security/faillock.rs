//! The fail-lock (docs/behaviour.md §4): after `attempts` failed sign-ins a username is locked for `window`,
//! and every attempt while locked counts as another failure.
//!
//! The rules are plain functions of an explicit wall-clock `now` (from the injected
//! [`crate::clock::Clock`]), so tests drive the timeline without sleeping and a clock that
//! steps back only makes differences saturate at zero. Memory is bounded by `capacity` records: when full, expired records are swept and,
//! if none are, a new username is refused ([`Reservation::Full`]) rather than a live record
//! evicted, because evicting would let an attacker reset a victim's count. Each record costs one
//! KDF run to create, so the records live at one time are at most the KDF rate × the window;
//! the default capacity is derived from that (see `docs/design.md`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::domain::Username;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    failures: u32,
    /// Never moves backwards: a clock that reads earlier (stepped back, or another machine's
    /// lagging one) cannot shorten a lock.
    last_failure: Timestamp,
    /// Start of this run of failures, compared with an admin's unlock time.
    started: Timestamp,
}

/// What an attempt may do, decided before any KDF work.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Go ahead: a failure has been reserved and stays counted unless [`FailLock::succeeded`].
    Proceed,
    /// Locked: answer 429 with `Retry-After` of `retry_after`. The attempt was counted.
    Locked { retry_after: Duration },
    /// The record table is full of live records; try later.
    Full { retry_after: Duration },
}

/// Keyed by canonical username; the same rules also key by device id (see `device`).
pub struct FailLock<K = Username> {
    attempts: u32,
    window: Duration,
    capacity: usize,
    records: Mutex<HashMap<K, Record>>,
    /// When the table was last found full of live records: the earliest time one of them can
    /// expire. Until then a new name is refused without scanning the table.
    full_until: Mutex<Option<Timestamp>>,
    last_sweep: Mutex<Option<Timestamp>>,
}

impl<K: Eq + Hash + Clone> FailLock<K> {
    pub fn new(attempts: u32, window: Duration, capacity: usize) -> Self {
        Self {
            attempts: attempts.max(1),
            window,
            capacity: capacity.max(1),
            records: Mutex::new(HashMap::new()),
            full_until: Mutex::new(None),
            last_sweep: Mutex::new(None),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn is_live(&self, r: &Record, now: Timestamp) -> bool {
        now.since(r.last_failure) < self.window
    }

    /// Checks the lock and reserves one failure for this attempt, atomically, so N parallel
    /// guesses count as N.
    pub fn reserve(&self, user: &K, now: Timestamp) -> Reservation {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if !records.contains_key(user) && records.len() >= self.capacity {
            let mut full_until = self.full_until.lock().unwrap_or_else(|e| e.into_inner());
            // A hint further away than one window is stale (the clock stepped back): rescan.
            if let Some(until) = *full_until
                && now < until
                && until.since(now) <= self.window
            {
                return Reservation::Full {
                    retry_after: until.since(now).max(Duration::from_secs(1)),
                };
            }
            records.retain(|_, r| now.since(r.last_failure) < self.window);
            if records.len() >= self.capacity {
                let oldest = records
                    .values()
                    .map(|r| r.last_failure)
                    .min()
                    .unwrap_or(now);
                let retry_after = self.window.saturating_sub(now.since(oldest));
                *full_until = Some(now + retry_after);
                return Reservation::Full {
                    retry_after: retry_after.max(Duration::from_secs(1)),
                };
            }
        }
        let record = records.entry(user.clone()).or_insert(Record {
            failures: 0,
            last_failure: now,
            started: now,
        });
        let locked = record.failures >= self.attempts && self.is_live(record, now);
        if record.failures > 0 && !self.is_live(record, now) {
            record.failures = 0;
            record.started = now;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = record.last_failure.max(now);
        if locked {
            Reservation::Locked {
                retry_after: self.window,
            }
        } else {
            Reservation::Proceed
        }
    }

    /// Whether `user` is locked now, without counting anything (for display).
    pub fn is_locked(&self, user: &K, now: Timestamp) -> bool {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .get(user)
            .is_some_and(|r| r.failures >= self.attempts && self.is_live(r, now))
    }

    /// An admin unlocked `user` at `unlocked_ms` (wall clock): forget a record that began before
    /// then. Later failures (a new run) stay counted.
    pub fn forgive(&self, user: &K, unlocked_ms: i64) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records
            .get(user)
            .is_some_and(|r| r.started.as_ms() <= unlocked_ms)
        {
            records.remove(user);
        }
    }

    /// A correct password: forget the record (the reserved failure included).
    pub fn succeeded(&self, user: &K) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(user);
    }

    /// Gives back a failure reserved for an attempt that never checked the password (e.g. the
    /// KDF queue was full), so server load cannot lock anyone.
    pub fn release(&self, user: &K) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = records.get_mut(user) {
            r.failures = r.failures.saturating_sub(1);
            if r.failures == 0 {
                records.remove(user);
            }
        }
    }

    /// Drops records older than the window. Called periodically; cheap when run at most once
    /// per second.
    pub fn sweep(&self, now: Timestamp) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            // A clock that stepped back does not stop the sweeps until it catches up.
            if last.is_some_and(|t| t <= now && now.since(t) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|_, r| now.since(r.last_failure) < self.window);
    }

    pub fn len(&self) -> usize {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The default record capacity: enough for every KDF run the pool can do in one window
/// (`threads / seconds-per-hash × window`), with a floor, so it never refuses honest traffic
/// but cannot grow past what the KDF rate allows.
pub fn default_capacity(kdf_threads: usize, seconds_per_hash: f64, window: Duration) -> usize {
    let rate = kdf_threads as f64 / seconds_per_hash.max(1e-4);
    let n = rate * window.as_secs_f64() * 1.25;
    (n.ceil() as usize).clamp(10_000, 200_000)
}

#[cfg(test)]
mod tests;
