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
//!
//! Every decision takes the wall-clock `now` from the caller (the injected
//! [`crate::clock::Clock`]); a clock that steps back makes elapsed times read zero (no refill,
//! no expiry) and never moves a stored time backwards.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Timestamp;

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
    last: Timestamp,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Timestamp,
}

/// One failure reserved for an attempt (`None`: not stored, because the limit is off or the
/// table was full). Not `Clone`: it can be given back once.
#[derive(Debug)]
#[must_use = "a reservation is either kept (a failure) or released"]
pub struct Reserved(Option<AddressKey>);

impl Reserved {
    /// A reservation made by another implementation of these rules
    /// ([`crate::security::limits::AddressLimits`]): `None` when nothing was stored.
    pub(crate) fn new(key: Option<AddressKey>) -> Self {
        Self(key)
    }

    /// The address group whose failure to give back, if one was stored.
    pub(crate) fn into_key(self) -> Option<AddressKey> {
        self.0
    }
}

/// What an [`AddressGuard`] was built with, so a shared implementation of the same rules can
/// be built from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardSettings {
    pub max_failures: u32,
    pub window: Duration,
    pub kdf_per_minute: u32,
    pub capacity: usize,
}

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

    /// The limits this guard applies, for building the shared implementation alike.
    pub fn settings(&self) -> GuardSettings {
        GuardSettings {
            max_failures: self.max_failures,
            window: self.window,
            kdf_per_minute: self.kdf_per_minute,
            capacity: self.capacity,
        }
    }

    /// The KDF budget's verdict without spending: refused only while the pool is `contended`
    /// and the address's bucket holds less than one token.
    fn budget_left(&self, key: AddressKey, now: Timestamp, contended: bool) -> Result<(), Refusal> {
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

    fn failures_live(&self, f: &Failures, now: Timestamp) -> bool {
        now.since(f.last) < self.window
    }

    /// Whether this address may make an attempt now (checks both limits, counts nothing).
    /// `contended`: whether the KDF pool has jobs waiting; the budget only bites then.
    pub fn admit(&self, ip: IpAddr, now: Timestamp, contended: bool) -> Result<(), Refusal> {
        let key = AddressKey::of(ip);
        if self.max_failures > 0 {
            let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = failures.get(&key)
                && f.count >= self.max_failures
                && self.failures_live(f, now)
            {
                let left = self.window.saturating_sub(now.since(f.last));
                return Err(Refusal::Throttled(left.max(Duration::from_secs(1))));
            }
        }
        self.budget_left(key, now, contended)
    }

    /// Counts one failure that ran no KDF (a taken username at sign-up).
    pub fn failed(&self, ip: IpAddr, now: Timestamp) {
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
        now: Timestamp,
    ) -> bool {
        if !failures.contains_key(&key) && failures.len() >= self.capacity {
            failures.retain(|_, f| now.since(f.last) < self.window);
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
        f.last = f.last.max(now);
        true
    }

    /// Checks both limits as [`AddressGuard::admit`] does and, in the same critical section,
    /// reserves one failure, so N parallel attempts count as N: past `--ip-failures` the
    /// rest are refused before any KDF work. The failure stays counted unless given back
    /// with [`AddressGuard::release`] (right password, or the password was never checked).
    pub fn reserve(
        &self,
        ip: IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Reserved, Refusal> {
        let key = AddressKey::of(ip);
        self.budget_left(key, now, contended)?;
        if self.max_failures == 0 {
            return Ok(Reserved(None));
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = failures.get(&key)
            && f.count >= self.max_failures
            && self.failures_live(f, now)
        {
            let left = self.window.saturating_sub(now.since(f.last));
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

    fn refilled(&self, b: &Bucket, now: Timestamp) -> f64 {
        let per_sec = f64::from(self.kdf_per_minute) / 60.0;
        (b.tokens + now.since(b.last).as_secs_f64() * per_sec).min(self.burst())
    }

    fn wait_for_token(&self, tokens: f64) -> Duration {
        let per_sec = f64::from(self.kdf_per_minute) / 60.0;
        Duration::from_secs_f64(((1.0 - tokens) / per_sec).max(1.0))
    }

    /// Takes one Argon2 run from the address's budget. An empty budget refuses only while the
    /// pool is `contended` (jobs waiting): an idle pool harms no one, so it is never refused,
    /// but the run is still spent, so an address that brings contention finds its budget gone.
    pub fn spend_kdf(&self, ip: IpAddr, now: Timestamp, contended: bool) -> Result<(), Refusal> {
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
        // `max`: a clock that stepped back must not earn the same refill twice.
        *b = Bucket {
            tokens: (tokens - 1.0).max(0.0),
            last: b.last.max(now),
        };
        Ok(())
    }

    /// Forgets expired failure records and full buckets.
    pub fn sweep(&self, now: Timestamp) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, f| now.since(f.last) < self.window);
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
mod tests;
