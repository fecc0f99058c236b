//! The fail-lock (docs/behaviour.md §4): after `attempts` failed sign-ins a username is locked for `window`,
//! and every attempt while locked counts as another failure.
//!
//! The rules are plain functions of an explicit `now`, so tests drive the timeline without
//! sleeping. Memory is bounded by `capacity` records: when full, expired records are swept and,
//! if none are, a new username is refused ([`Reservation::Full`]) rather than a live record
//! evicted, because evicting would let an attacker reset a victim's count. Each record costs one
//! KDF run to create, so the records live at one time are at most the KDF rate × the window;
//! the default capacity is derived from that (see `docs/design.md`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::Username;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// Wall-clock start of this run of failures, compared with an admin's unlock time.
    started_ms: i64,
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
    full_until: Mutex<Option<Instant>>,
    last_sweep: Mutex<Option<Instant>>,
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

    fn is_live(&self, r: &Record, now: Instant) -> bool {
        now.saturating_duration_since(r.last_failure) < self.window
    }

    /// Checks the lock and reserves one failure for this attempt, atomically, so N parallel
    /// guesses count as N.
    pub fn reserve(&self, user: &K, now: Instant) -> Reservation {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if !records.contains_key(user) && records.len() >= self.capacity {
            let mut full_until = self.full_until.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = *full_until
                && now < until
            {
                return Reservation::Full {
                    retry_after: until.duration_since(now).max(Duration::from_secs(1)),
                };
            }
            records.retain(|_, r| now.saturating_duration_since(r.last_failure) < self.window);
            if records.len() >= self.capacity {
                let oldest = records
                    .values()
                    .map(|r| r.last_failure)
                    .min()
                    .unwrap_or(now);
                let retry_after = self
                    .window
                    .saturating_sub(now.saturating_duration_since(oldest));
                *full_until = Some(now + retry_after);
                return Reservation::Full {
                    retry_after: retry_after.max(Duration::from_secs(1)),
                };
            }
        }
        let wall = crate::clock::now_ms();
        let record = records.entry(user.clone()).or_insert(Record {
            failures: 0,
            last_failure: now,
            started_ms: wall,
        });
        let locked = record.failures >= self.attempts && self.is_live(record, now);
        if record.failures > 0 && !self.is_live(record, now) {
            record.failures = 0;
            record.started_ms = wall;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        if locked {
            Reservation::Locked {
                retry_after: self.window,
            }
        } else {
            Reservation::Proceed
        }
    }

    /// Whether `user` is locked now, without counting anything (for display).
    pub fn is_locked(&self, user: &K, now: Instant) -> bool {
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
            .is_some_and(|r| r.started_ms <= unlocked_ms)
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
    pub fn sweep(&self, now: Instant) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|_, r| now.saturating_duration_since(r.last_failure) < self.window);
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
mod tests {
    use super::*;

    fn u(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    const W: Duration = Duration::from_secs(600);

    #[test]
    fn three_strikes_then_locked_even_for_the_right_password() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        for i in 0..3 {
            assert_eq!(
                lock.reserve(&alice, t0 + Duration::from_secs(i)),
                Reservation::Proceed
            );
        }
        // The fourth attempt is refused before any password check.
        assert_eq!(
            lock.reserve(&alice, t0 + Duration::from_secs(3)),
            Reservation::Locked { retry_after: W }
        );
        assert!(lock.is_locked(&alice, t0 + Duration::from_secs(3)));
        // Other usernames are unaffected.
        assert_eq!(lock.reserve(&u("bob"), t0), Reservation::Proceed);
    }

    #[test]
    fn an_admin_unlock_forgives_only_failures_that_began_before_it() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        for _ in 0..4 {
            lock.reserve(&alice, t0);
        }
        assert!(lock.is_locked(&alice, t0));
        // An unlock recorded before the run began changes nothing.
        lock.forgive(&alice, crate::clock::now_ms() - 60_000);
        assert!(lock.is_locked(&alice, t0));
        lock.forgive(&alice, crate::clock::now_ms());
        assert!(!lock.is_locked(&alice, t0));
        // A new run after the unlock counts in full: the old unlock does not forgive it.
        let unlocked = crate::clock::now_ms();
        std::thread::sleep(Duration::from_millis(5));
        for _ in 0..3 {
            assert_eq!(lock.reserve(&alice, t0), Reservation::Proceed);
        }
        lock.forgive(&alice, unlocked);
        assert!(matches!(
            lock.reserve(&alice, t0),
            Reservation::Locked { .. }
        ));
    }

    #[test]
    fn success_before_the_lock_clears_the_record() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        lock.reserve(&alice, t0);
        lock.reserve(&alice, t0);
        lock.reserve(&alice, t0); // reserved for an attempt that turns out right
        lock.succeeded(&alice);
        for _ in 0..3 {
            assert_eq!(lock.reserve(&alice, t0), Reservation::Proceed);
        }
        assert!(matches!(
            lock.reserve(&alice, t0),
            Reservation::Locked { .. }
        ));
    }

    #[test]
    fn attempts_while_locked_extend_the_lock() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        for _ in 0..3 {
            lock.reserve(&alice, t0);
        }
        // 9 minutes later: still locked, and this attempt restarts the 10 minutes.
        let t9 = t0 + Duration::from_secs(540);
        assert!(matches!(
            lock.reserve(&alice, t9),
            Reservation::Locked { .. }
        ));
        // 10.5 minutes after t0 but only 1.5 after the last attempt: still locked.
        assert!(lock.is_locked(&alice, t0 + Duration::from_secs(630)));
        // 10 minutes after the last attempt: free, and the count restarts.
        let t_free = t9 + W;
        assert!(!lock.is_locked(&alice, t_free));
        assert_eq!(lock.reserve(&alice, t_free), Reservation::Proceed);
        assert_eq!(lock.reserve(&alice, t_free), Reservation::Proceed);
        assert_eq!(lock.reserve(&alice, t_free), Reservation::Proceed);
        assert!(matches!(
            lock.reserve(&alice, t_free),
            Reservation::Locked { .. }
        ));
    }

    #[test]
    fn lock_expires_after_the_window() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        for _ in 0..3 {
            lock.reserve(&alice, t0);
        }
        assert!(lock.is_locked(&alice, t0 + W - Duration::from_millis(1)));
        assert!(!lock.is_locked(&alice, t0 + W));
        assert_eq!(lock.reserve(&alice, t0 + W), Reservation::Proceed);
    }

    #[test]
    fn stale_failures_restart_the_count() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        lock.reserve(&alice, t0);
        lock.reserve(&alice, t0);
        // Third failure over a window later counts as the first.
        let later = t0 + W + Duration::from_secs(1);
        lock.reserve(&alice, later);
        assert_eq!(lock.reserve(&alice, later), Reservation::Proceed);
        assert_eq!(lock.reserve(&alice, later), Reservation::Proceed);
        assert!(matches!(
            lock.reserve(&alice, later),
            Reservation::Locked { .. }
        ));
    }

    #[test]
    fn bounded_memory_refuses_new_names_but_keeps_live_records() {
        let lock = FailLock::new(3, W, 50);
        let t0 = Instant::now();
        let victim = u("victim");
        for _ in 0..3 {
            lock.reserve(&victim, t0);
        }
        let mut refused = 0;
        for i in 0..10_000 {
            let name = u(&format!("spray{i}"));
            if matches!(
                lock.reserve(&name, t0 + Duration::from_secs(1)),
                Reservation::Full { .. }
            ) {
                refused += 1;
            }
            assert!(lock.len() <= 50);
        }
        assert_eq!(refused, 10_000 - 49);
        // The live record was never evicted: the victim is still locked.
        assert!(lock.is_locked(&victim, t0 + Duration::from_secs(2)));
        // Once the window passes, expired records make room again.
        let later = t0 + W + Duration::from_secs(2);
        assert_eq!(lock.reserve(&u("newcomer"), later), Reservation::Proceed);
        assert!(lock.len() <= 50);
    }

    #[test]
    fn release_gives_back_one_reservation() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        let alice = u("alice");
        lock.reserve(&alice, t0);
        lock.reserve(&alice, t0);
        lock.reserve(&alice, t0);
        lock.release(&alice);
        assert!(!lock.is_locked(&alice, t0));
        lock.release(&alice);
        lock.release(&alice);
        assert!(lock.is_empty());
        lock.release(&alice);
        assert!(lock.is_empty());
    }

    #[test]
    fn sweep_forgets_old_records() {
        let lock = FailLock::new(3, W, 100);
        let t0 = Instant::now();
        lock.reserve(&u("alice"), t0);
        lock.reserve(&u("bob"), t0 + Duration::from_secs(300));
        lock.sweep(t0 + W + Duration::from_secs(1));
        assert_eq!(lock.len(), 1);
    }

    #[test]
    fn concurrent_reservations_all_count() {
        let lock = std::sync::Arc::new(FailLock::new(3, W, 100));
        let t0 = Instant::now();
        let results: Vec<_> = (0..16)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || lock.reserve(&u("alice"), t0))
            })
            .map(|h| h.join().unwrap())
            .collect();
        let proceeded = results
            .iter()
            .filter(|r| **r == Reservation::Proceed)
            .count();
        assert_eq!(proceeded, 3, "only three guesses may reach the KDF");
    }

    #[test]
    fn capacity_follows_the_kdf_rate() {
        // 2 threads at 25 ms a hash for 10 minutes: 48 000 hashes, plus headroom.
        assert_eq!(default_capacity(2, 0.025, W), 60_000);
        assert_eq!(default_capacity(1, 10.0, W), 10_000);
    }
}
