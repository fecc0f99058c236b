//! Wall-clock time as Unix milliseconds, the unit stored in the database, and the [`Clock`]
//! the lock and throttle read it from (injected, so tests drive the timeline and a shared
//! implementation compares times across machines; see `docs/design.md`, "Lock and throttle
//! interfaces").

use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A wall-clock instant: milliseconds since the Unix epoch. Unlike `Instant`, it means the
/// same on every machine, and it may step backwards: every difference saturates at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_ms(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn as_ms(self) -> i64 {
        self.0
    }

    /// Time elapsed since `earlier`; zero when `earlier` is later (the clock stepped back).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;

    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

/// Where the current wall-clock time comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(now_ms())
    }
}

/// A clock that moves only when told to: for tests of time-dependent rules.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicI64::new(start.0))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Steps the clock backwards, as an NTP correction or an operator might.
    pub fn rewind(&self, d: Duration) {
        self.0.fetch_sub(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// RFC 3339 to the second, UTC, for pages and JSON.
pub fn format_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "2026-11-22 20:44 UTC", for people.
pub fn format_human(ms: i64) -> String {
    let rfc = format_ms(ms);
    format!("{} {} UTC", &rfc[..10], &rfc[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_795_000_000_123), "2026-11-18T11:06:40Z");
        assert_eq!(format_human(1_795_000_000_123), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn differences_saturate_when_the_clock_steps_back() {
        let clock = ManualClock::new(Timestamp::from_ms(1_000_000));
        let t0 = clock.now();
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now().since(t0), Duration::from_secs(5));
        clock.rewind(Duration::from_secs(60));
        assert!(clock.now() < t0);
        assert_eq!(clock.now().since(t0), Duration::ZERO);
        assert_eq!(
            t0 + Duration::from_millis(1500),
            Timestamp::from_ms(1_001_500)
        );
        assert_eq!(
            Timestamp::from_ms(i64::MAX - 1) + Duration::from_secs(1),
            Timestamp::from_ms(i64::MAX)
        );
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = now_ms();
        let t = SystemClock.now().as_ms();
        assert!(t >= before && t <= now_ms());
    }
}
