//! Per-address abuse limits: a failure throttle (`--ip-failures` within `--ip-window`) and a
//! KDF budget (`--ip-kdf-rate` Argon2 runs per minute), so that one client address can neither
//! keep many usernames locked nor keep the KDF pool busy.
//!
//! Addresses are grouped as a careful operator would: IPv4 per address, IPv6 per /64 (one
//! customer's allocation), IPv4-mapped IPv6 unmapped first. Both tables are bounded and never
//! evict a live entry (that would let an attacker reset their own count). When the KDF-budget
//! table is full, a new address is refused (503). When the failure table is full, a new
//! address's failure goes uncounted (logged): the username locks still hold, and refusing
//! would let whoever filled the table shut every newcomer out.
//!
//! A password check reserves its failure before the KDF runs ([`AddressGuard::reserve`]) and
//! gives it back when the password was right or never checked ([`AddressGuard::release`]),
//! so however many guesses one address sends at once, at most `--ip-failures` of them reach
//! the KDF per window. Counting after the KDF let a parallel burst past the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An address group: IPv4 address or IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4(u32),
    V6Prefix(u64),
}

impl AddressKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(u32::from(v4)),
                None => AddressKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Why an address is refused, and for how long.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures or KDF runs: 429.
    Throttled(Duration),
    /// The table is full of live entries: 503.
    Full(Duration),
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One failure reserved for an attempt (`None`: not stored, because the limit is off or the
/// table was full). Not `Clone`: it can be given back once.
#[derive(Debug)]
#[must_use = "a reservation is either kept (a failure) or released"]
pub struct Reserved(Option<AddressKey>);

pub struct AddressGuard {
    max_failures: u32,
    window: Duration,
    /// Argon2 runs per minute per address; 0 = no budget.
    kdf_per_minute: u32,
    capacity: usize,
    failures: Mutex<HashMap<AddressKey, Failures>>,
    buckets: Mutex<HashMap<AddressKey, Bucket>>,
}

impl AddressGuard {
    /// `max_failures == 0` turns the failure throttle off; `kdf_per_minute == 0` the budget.
    pub fn new(max_failures: u32, window: Duration, kdf_per_minute: u32, capacity: usize) -> Self {
        Self {
            max_failures,
            window,
            kdf_per_minute,
            capacity: capacity.max(1),
            failures: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn failures_live(&self, f: &Failures, now: Instant) -> bool {
        now.saturating_duration_since(f.last) < self.window
    }

    /// Whether this address may make an attempt now (checks both limits, counts nothing).
    /// `contended`: whether the KDF pool has jobs waiting; the budget only bites then.
    pub fn admit(&self, ip: IpAddr, now: Instant, contended: bool) -> Result<(), Refusal> {
        let key = AddressKey::of(ip);
        if self.max_failures > 0 {
            let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = failures.get(&key)
                && f.count >= self.max_failures
                && self.failures_live(f, now)
            {
                let left = self
                    .window
                    .saturating_sub(now.saturating_duration_since(f.last));
                return Err(Refusal::Throttled(left.max(Duration::from_secs(1))));
            }
        }
        if self.kdf_per_minute > 0 && contended {
            let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = buckets.get(&key) {
                let tokens = self.refilled(b, now);
                if tokens < 1.0 {
                    return Err(Refusal::Throttled(self.wait_for_token(tokens)));
                }
            }
        }
        Ok(())
    }

    /// Counts one failure that ran no KDF (a taken username at sign-up).
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let key = AddressKey::of(ip);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.count(&mut failures, key, now);
    }

    /// Adds one failure for `key`; false when the table is full of live records and the
    /// failure went uncounted.
    fn count(
        &self,
        failures: &mut HashMap<AddressKey, Failures>,
        key: AddressKey,
        now: Instant,
    ) -> bool {
        if !failures.contains_key(&key) && failures.len() >= self.capacity {
            failures.retain(|_, f| now.saturating_duration_since(f.last) < self.window);
            if failures.len() >= self.capacity {
                tracing::warn!("address failure table full; a failure was not counted");
                return false;
            }
        }
        let f = failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        if !self.failures_live(f, now) {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        true
    }

    /// Checks both limits as [`AddressGuard::admit`] does and, in the same critical section,
    /// reserves one failure, so N parallel attempts count as N: past `--ip-failures` the
    /// rest are refused before any KDF work. The failure stays counted unless given back
    /// with [`AddressGuard::release`] (right password, or the password was never checked).
    pub fn reserve(&self, ip: IpAddr, now: Instant, contended: bool) -> Result<Reserved, Refusal> {
        let key = AddressKey::of(ip);
        if self.kdf_per_minute > 0 && contended {
            let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = buckets.get(&key) {
                let tokens = self.refilled(b, now);
                if tokens < 1.0 {
                    return Err(Refusal::Throttled(self.wait_for_token(tokens)));
                }
            }
        }
        if self.max_failures == 0 {
            return Ok(Reserved(None));
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = failures.get(&key)
            && f.count >= self.max_failures
            && self.failures_live(f, now)
        {
            let left = self
                .window
                .saturating_sub(now.saturating_duration_since(f.last));
            return Err(Refusal::Throttled(left.max(Duration::from_secs(1))));
        }
        let stored = self.count(&mut failures, key, now);
        Ok(Reserved(stored.then_some(key)))
    }

    /// Gives back a failure reserved by [`AddressGuard::reserve`]. The record's time stays
    /// at the attempt's: a success does not shorten the window of earlier failures.
    pub fn release(&self, reserved: Reserved) {
        let Some(key) = reserved.0 else { return };
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = failures.get_mut(&key) {
            f.count = f.count.saturating_sub(1);
            if f.count == 0 {
                failures.remove(&key);
            }
        }
    }

    fn burst(&self) -> f64 {
        f64::from(self.kdf_per_minute)
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let per_sec = f64::from(self.kdf_per_minute) / 60.0;
        (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * per_sec).min(self.burst())
    }

    fn wait_for_token(&self, tokens: f64) -> Duration {
        let per_sec = f64::from(self.kdf_per_minute) / 60.0;
        Duration::from_secs_f64(((1.0 - tokens) / per_sec).max(1.0))
    }

    /// Takes one Argon2 run from the address's budget. An empty budget refuses only while the
    /// pool is `contended` (jobs waiting): an idle pool harms no one, so it is never refused,
    /// but the run is still spent, so an address that brings contention finds its budget gone.
    pub fn spend_kdf(&self, ip: IpAddr, now: Instant, contended: bool) -> Result<(), Refusal> {
        if self.kdf_per_minute == 0 {
            return Ok(());
        }
        let key = AddressKey::of(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.capacity {
            // A bucket refilled to the burst carries no state worth keeping.
            let burst = self.burst();
            buckets.retain(|_, b| self.refilled(b, now) < burst);
            if buckets.len() >= self.capacity {
                return Err(Refusal::Full(Duration::from_secs(60)));
            }
        }
        let burst = self.burst();
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let tokens = self.refilled(b, now);
        if tokens < 1.0 && contended {
            return Err(Refusal::Throttled(self.wait_for_token(tokens)));
        }
        *b = Bucket {
            tokens: (tokens - 1.0).max(0.0),
            last: now,
        };
        Ok(())
    }

    /// Forgets expired failure records and full buckets.
    pub fn sweep(&self, now: Instant) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, f| now.saturating_duration_since(f.last) < self.window);
        let burst = self.burst();
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, b| self.refilled(b, now) < burst);
    }

    /// (failure records, KDF buckets) held now.
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(600);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn groups_addresses() {
        assert_eq!(
            AddressKey::of(ip("::ffff:192.0.2.1")),
            AddressKey::of(ip("192.0.2.1"))
        );
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
        assert_ne!(
            AddressKey::of(ip("192.0.2.1")),
            AddressKey::of(ip("192.0.2.2"))
        );
    }

    #[test]
    fn failures_throttle_the_address_until_the_window_passes() {
        let g = AddressGuard::new(3, W, 0, 100);
        let t0 = Instant::now();
        let a = ip("198.51.100.7");
        for _ in 0..3 {
            assert!(g.admit(a, t0, true).is_ok());
            g.failed(a, t0);
        }
        assert_eq!(
            g.admit(a, t0 + Duration::from_secs(10), true),
            Err(Refusal::Throttled(Duration::from_secs(590)))
        );
        assert!(
            g.admit(ip("198.51.100.8"), t0, true).is_ok(),
            "another address is unaffected"
        );
        // The /64 neighbour of an IPv6 address shares its fate.
        let v6 = ip("2001:db8::1");
        for _ in 0..3 {
            g.failed(v6, t0);
        }
        assert!(g.admit(ip("2001:db8::abcd"), t0, true).is_err());
        assert!(g.admit(a, t0 + W, true).is_ok(), "free after the window");
        g.failed(a, t0 + W);
        assert!(g.admit(a, t0 + W, true).is_ok(), "count restarted");
    }

    #[test]
    fn concurrent_reservations_admit_exactly_the_limit() {
        let g = std::sync::Arc::new(AddressGuard::new(10, W, 0, 100));
        let t0 = Instant::now();
        let start = std::sync::Arc::new(std::sync::Barrier::new(64));
        let results: Vec<_> = (0..64)
            .map(|_| {
                let (g, start) = (g.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    g.reserve(ip("198.51.100.7"), t0, false)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let admitted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(admitted, 10, "only the limit may reach the KDF");
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, Refusal::Throttled(_)))
        );
    }

    #[test]
    fn a_released_reservation_is_not_a_failure() {
        let g = AddressGuard::new(2, W, 0, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        // Right passwords give their reservation back, however many.
        for _ in 0..5 {
            let r = g.reserve(a, t0, false).unwrap();
            g.release(r);
        }
        assert_eq!(g.sizes(), (0, 0), "nothing left behind");
        // Two kept (wrong passwords), then the third is refused.
        let _wrong = g.reserve(a, t0, false).unwrap();
        let _wrong = g.reserve(a, t0, false).unwrap();
        assert!(matches!(
            g.reserve(a, t0, false),
            Err(Refusal::Throttled(_))
        ));
        assert!(g.admit(a, t0, false).is_err());
        // Held but unresolved reservations count: one given back frees one slot.
        let g = AddressGuard::new(2, W, 0, 100);
        let first = g.reserve(a, t0, false).unwrap();
        let _second = g.reserve(a, t0, false).unwrap();
        assert!(g.reserve(a, t0, false).is_err());
        g.release(first);
        assert!(g.reserve(a, t0, false).is_ok());
        assert!(g.reserve(a, t0, false).is_err());
    }

    #[test]
    fn reservations_keep_the_table_bounds() {
        let g = AddressGuard::new(2, W, 0, 10);
        let t0 = Instant::now();
        let attacker = ip("203.0.113.1");
        let _ = g.reserve(attacker, t0, false).unwrap();
        let _ = g.reserve(attacker, t0, false).unwrap();
        let mut unstored = Vec::new();
        for i in 0..100u32 {
            let other = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            // A full table admits a new address uncounted rather than shutting it out.
            let r = g
                .reserve(other, t0, false)
                .expect("never refused for a full table");
            if i >= 9 {
                unstored.push(r);
            }
            assert!(g.sizes().0 <= 10);
        }
        for r in unstored {
            g.release(r); // gives back nothing that was not stored
        }
        assert_eq!(g.sizes().0, 10);
        assert!(
            g.reserve(attacker, t0, false).is_err(),
            "the live record survived the spray"
        );
        // Limits off: nothing stored, nothing refused.
        let off = AddressGuard::new(0, W, 0, 1);
        for _ in 0..100 {
            let r = off.reserve(attacker, t0, true).unwrap();
            off.release(r);
        }
        assert_eq!(off.sizes(), (0, 0));
    }

    #[test]
    fn reserve_sees_an_empty_kdf_budget_under_contention() {
        let g = AddressGuard::new(0, W, 2, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert!(g.spend_kdf(a, t0, true).is_ok());
        assert!(g.spend_kdf(a, t0, true).is_ok());
        assert!(g.reserve(a, t0, false).is_ok(), "idle pool");
        assert!(matches!(g.reserve(a, t0, true), Err(Refusal::Throttled(_))));
    }

    #[test]
    fn zero_turns_limits_off() {
        let g = AddressGuard::new(0, W, 0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            g.failed(ip("192.0.2.1"), t0);
            assert!(g.spend_kdf(ip("192.0.2.1"), t0, true).is_ok());
        }
        assert!(g.admit(ip("192.0.2.1"), t0, true).is_ok());
        assert_eq!(g.sizes(), (0, 0));
    }

    #[test]
    fn kdf_budget_refills_over_time() {
        let g = AddressGuard::new(0, W, 6, 100); // 6 per minute: one every 10 s
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..6 {
            assert!(g.spend_kdf(a, t0, true).is_ok());
        }
        assert_eq!(
            g.spend_kdf(a, t0, true),
            Err(Refusal::Throttled(Duration::from_secs(10)))
        );
        assert!(g.admit(a, t0, true).is_err(), "admit sees the empty budget");
        assert!(g.spend_kdf(ip("192.0.2.2"), t0, true).is_ok());
        assert!(g.spend_kdf(a, t0 + Duration::from_secs(10), true).is_ok());
        assert!(g.spend_kdf(a, t0 + Duration::from_secs(10), true).is_err());
    }

    #[test]
    fn an_empty_budget_refuses_only_under_contention() {
        let g = AddressGuard::new(0, W, 2, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            assert!(
                g.spend_kdf(a, t0, false).is_ok(),
                "idle pool: never refused"
            );
        }
        assert!(g.admit(a, t0, false).is_ok());
        assert!(g.admit(a, t0, true).is_err(), "but the budget is spent");
        assert!(g.spend_kdf(a, t0, true).is_err());
    }

    #[test]
    fn full_tables_refuse_new_addresses_and_keep_live_ones() {
        let g = AddressGuard::new(2, W, 2, 10);
        let t0 = Instant::now();
        let attacker = ip("203.0.113.1");
        g.failed(attacker, t0);
        g.failed(attacker, t0);
        for i in 0..100u32 {
            let other = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.failed(other, t0);
            let _ = g.spend_kdf(other, t0, true);
            let _ = g.spend_kdf(other, t0, true);
        }
        let (f, b) = g.sizes();
        assert!(f <= 10 && b <= 10);
        assert!(
            g.admit(attacker, t0, true).is_err(),
            "the live record survived the spray"
        );
        assert!(matches!(
            g.spend_kdf(ip("203.0.113.99"), t0, true),
            Err(Refusal::Full(_))
        ));
        g.sweep(t0 + W + Duration::from_secs(60));
        assert_eq!(g.sizes(), (0, 0));
    }
}
