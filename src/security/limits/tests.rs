//! The lock and throttle rules through [`AttemptLock`] and [`AddressLimits`], each scenario run
//! on both variants (`memory`, `postgres`: a fresh database per test), and what only the shared
//! variant promises: two stores on one database (two instances) decide from the same records.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::domain::Username;
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::postgres::limits::LockKind;
use crate::store::testing::{Backend, TestDb};

const W: Duration = Duration::from_secs(600);

/// Any fixed wall-clock time: the rules only compare differences.
const T0: Timestamp = Timestamp::from_ms(1_795_000_000_000);

fn u(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Throttled for about `d`: the budget's waits are computed in floating point.
fn throttled_about(verdict: Result<(), Refusal>, d: Duration) -> bool {
    matches!(verdict, Err(Refusal::Throttled(w)) if w.abs_diff(d) < Duration::from_millis(1))
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    Memory,
    Postgres,
}

/// Where a test's locks and limits live: nowhere, or a fresh PostgreSQL database.
struct Setup {
    variant: Variant,
    db: Option<TestDb>,
    store: Option<PgStore>,
}

fn open_pg(db: &TestDb) -> PgStore {
    match db.store() {
        Store::Postgres(pg) => pg,
        Store::Sqlite(_) => unreachable!("a PostgreSQL test database"),
    }
}

impl Setup {
    fn new(variant: Variant) -> Self {
        match variant {
            Variant::Memory => Self {
                variant,
                db: None,
                store: None,
            },
            Variant::Postgres => {
                let db = TestDb::new(Backend::Postgres);
                let store = open_pg(&db);
                Self {
                    variant,
                    db: Some(db),
                    store: Some(store),
                }
            }
        }
    }

    /// A second instance on the same database.
    fn another_instance(&self) -> PgStore {
        open_pg(self.db.as_ref().expect("a PostgreSQL setup"))
    }

    fn lock<K: Eq + Hash + Clone>(
        &self,
        kind: LockKind,
        attempts: u32,
        window: Duration,
        capacity: usize,
    ) -> AttemptLock<K> {
        match self.variant {
            Variant::Memory => AttemptLock::Memory(FailLock::new(attempts, window, capacity)),
            Variant::Postgres => AttemptLock::Postgres(PgFailLock::new(
                self.store.clone().unwrap(),
                kind,
                attempts,
                window,
                capacity,
            )),
        }
    }

    fn users(&self, attempts: u32, capacity: usize) -> AttemptLock<Username> {
        self.lock(LockKind::User, attempts, W, capacity)
    }

    fn limits(
        &self,
        max_failures: u32,
        window: Duration,
        kdf_per_minute: u32,
        capacity: usize,
    ) -> AddressLimits {
        let guard = AddressGuard::new(max_failures, window, kdf_per_minute, capacity);
        match self.variant {
            Variant::Memory => AddressLimits::Memory(guard),
            Variant::Postgres => AddressLimits::Postgres(PgAddressGuard::new(
                self.store.clone().unwrap(),
                guard.settings(),
            )),
        }
    }
}

/// Runs an `async fn(Variant)` test on each variant: `name::memory` and `name::postgres`.
macro_rules! both_variants {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                use super::Variant;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$test(Variant::Memory).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test(Variant::Postgres).await
                }
            }
        )+
    };
}

both_variants!(
    the_lock_follows_the_injected_clock,
    three_strikes_then_locked_even_for_the_right_password,
    an_admin_unlock_forgives_only_failures_that_began_before_it,
    success_before_the_lock_clears_the_record,
    attempts_while_locked_extend_the_lock,
    lock_expires_after_the_window,
    stale_failures_restart_the_count,
    bounded_table_refuses_new_names_but_keeps_live_records,
    release_gives_back_one_reservation,
    sweep_forgets_old_records,
    concurrent_reservations_all_count,
    a_clock_stepping_back_neither_frees_nor_shortens_a_lock,
    a_clock_stepping_back_does_not_stop_the_sweeps,
    a_full_table_answers_at_most_a_window_after_the_clock_steps_back,
    usernames_and_devices_are_separate_records,
    the_throttle_follows_the_injected_clock,
    failures_throttle_the_address_until_the_window_passes,
    concurrent_address_reservations_admit_exactly_the_limit,
    a_released_reservation_is_not_a_failure,
    reservations_keep_the_table_bounds,
    reserve_sees_an_empty_kdf_budget_under_contention,
    zero_turns_limits_off,
    kdf_budget_refills_over_time,
    an_empty_budget_refuses_only_under_contention,
    full_tables_refuse_new_addresses_and_keep_live_ones,
    a_clock_stepping_back_keeps_failures_and_earns_no_refill,
);

// ---- The fail-lock (docs/behaviour.md §4) ----

async fn the_lock_follows_the_injected_clock(v: Variant) {
    let setup = Setup::new(v);
    let clock = ManualClock::new(T0);
    let lock: AttemptLock<String> = setup.lock(LockKind::Device, 3, W, 100);
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
    clock.rewind(secs(3600));
    assert!(lock.is_locked(&k, clock.now()).await.unwrap());
    clock.set(locked_at + W);
    lock.sweep(clock.now()).await;
    assert_eq!(lock.records().await, 0);
}

async fn three_strikes_then_locked_even_for_the_right_password(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for i in 0..3 {
        assert_eq!(
            lock.reserve(&alice, T0 + secs(i)).await.unwrap(),
            Reservation::Proceed
        );
    }
    // The fourth attempt is refused before any password check.
    assert_eq!(
        lock.reserve(&alice, T0 + secs(3)).await.unwrap(),
        Reservation::Locked { retry_after: W }
    );
    assert!(lock.is_locked(&alice, T0 + secs(3)).await.unwrap());
    // Other usernames are unaffected.
    assert_eq!(
        lock.reserve(&u("bob"), T0).await.unwrap(),
        Reservation::Proceed
    );
}

async fn an_admin_unlock_forgives_only_failures_that_began_before_it(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for _ in 0..4 {
        lock.reserve(&alice, T0).await.unwrap();
    }
    assert!(lock.is_locked(&alice, T0).await.unwrap());
    // An unlock recorded before the run began changes nothing.
    lock.forgive(&alice, T0.as_ms() - 60_000).await;
    assert!(lock.is_locked(&alice, T0).await.unwrap());
    lock.forgive(&alice, T0.as_ms()).await;
    assert!(!lock.is_locked(&alice, T0).await.unwrap());
    // A new run after the unlock counts in full: the old unlock does not forgive it.
    let unlocked = T0.as_ms();
    let t1 = T0 + Duration::from_millis(5);
    for _ in 0..3 {
        assert_eq!(
            lock.reserve(&alice, t1).await.unwrap(),
            Reservation::Proceed
        );
    }
    lock.forgive(&alice, unlocked).await;
    assert!(matches!(
        lock.reserve(&alice, t1).await.unwrap(),
        Reservation::Locked { .. }
    ));
}

async fn success_before_the_lock_clears_the_record(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for _ in 0..3 {
        lock.reserve(&alice, T0).await.unwrap(); // the third turns out right
    }
    lock.succeeded(&alice).await;
    assert_eq!(lock.records().await, 0);
    for _ in 0..3 {
        assert_eq!(
            lock.reserve(&alice, T0).await.unwrap(),
            Reservation::Proceed
        );
    }
    assert!(matches!(
        lock.reserve(&alice, T0).await.unwrap(),
        Reservation::Locked { .. }
    ));
}

async fn attempts_while_locked_extend_the_lock(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for _ in 0..3 {
        lock.reserve(&alice, T0).await.unwrap();
    }
    // 9 minutes later: still locked, and this attempt restarts the 10 minutes.
    let t9 = T0 + secs(540);
    assert!(matches!(
        lock.reserve(&alice, t9).await.unwrap(),
        Reservation::Locked { .. }
    ));
    // 10.5 minutes after T0 but only 1.5 after the last attempt: still locked.
    assert!(lock.is_locked(&alice, T0 + secs(630)).await.unwrap());
    // 10 minutes after the last attempt: free, and the count restarts.
    let t_free = t9 + W;
    assert!(!lock.is_locked(&alice, t_free).await.unwrap());
    for _ in 0..3 {
        assert_eq!(
            lock.reserve(&alice, t_free).await.unwrap(),
            Reservation::Proceed
        );
    }
    assert!(matches!(
        lock.reserve(&alice, t_free).await.unwrap(),
        Reservation::Locked { .. }
    ));
}

async fn lock_expires_after_the_window(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for _ in 0..3 {
        lock.reserve(&alice, T0).await.unwrap();
    }
    assert!(
        lock.is_locked(&alice, T0 + W - Duration::from_millis(1))
            .await
            .unwrap()
    );
    assert!(!lock.is_locked(&alice, T0 + W).await.unwrap());
    assert_eq!(
        lock.reserve(&alice, T0 + W).await.unwrap(),
        Reservation::Proceed
    );
}

async fn stale_failures_restart_the_count(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    lock.reserve(&alice, T0).await.unwrap();
    lock.reserve(&alice, T0).await.unwrap();
    // The third failure, over a window later, counts as the first: its run starts then.
    let later = T0 + W + secs(1);
    lock.reserve(&alice, later).await.unwrap();
    lock.forgive(&alice, T0.as_ms()).await;
    assert_eq!(
        lock.reserve(&alice, later).await.unwrap(),
        Reservation::Proceed
    );
    assert_eq!(
        lock.reserve(&alice, later).await.unwrap(),
        Reservation::Proceed
    );
    assert!(matches!(
        lock.reserve(&alice, later).await.unwrap(),
        Reservation::Locked { .. }
    ));
}

async fn bounded_table_refuses_new_names_but_keeps_live_records(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 50);
    let victim = u("victim");
    for _ in 0..3 {
        lock.reserve(&victim, T0).await.unwrap();
    }
    let mut refused = 0;
    for i in 0..200 {
        let name = u(&format!("spray{i}"));
        match lock.reserve(&name, T0 + secs(1)).await.unwrap() {
            Reservation::Full { retry_after } => {
                // The oldest live record (the victim's, at T0) frees a place first.
                assert_eq!(retry_after, W - secs(1));
                refused += 1;
            }
            other => assert_eq!(other, Reservation::Proceed),
        }
        assert!(lock.records().await <= 50);
    }
    assert_eq!(refused, 200 - 49);
    // The live record was never evicted: the victim is still locked, and a name already
    // stored is still counted.
    assert!(lock.is_locked(&victim, T0 + secs(2)).await.unwrap());
    assert_eq!(
        lock.reserve(&u("spray0"), T0 + secs(2)).await.unwrap(),
        Reservation::Proceed
    );
    // Once the window passes, expired records make room again.
    let later = T0 + W + secs(2);
    assert_eq!(
        lock.reserve(&u("newcomer"), later).await.unwrap(),
        Reservation::Proceed
    );
    assert!(lock.records().await <= 50);
}

async fn release_gives_back_one_reservation(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for _ in 0..3 {
        lock.reserve(&alice, T0).await.unwrap();
    }
    lock.release(&alice).await;
    assert!(!lock.is_locked(&alice, T0).await.unwrap());
    assert_eq!(lock.records().await, 1);
    lock.release(&alice).await;
    lock.release(&alice).await;
    assert_eq!(lock.records().await, 0);
    lock.release(&alice).await;
    assert_eq!(lock.records().await, 0);
    // Given back means not counted: three more reach the password check.
    for _ in 0..3 {
        assert_eq!(
            lock.reserve(&alice, T0).await.unwrap(),
            Reservation::Proceed
        );
    }
}

async fn sweep_forgets_old_records(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    lock.reserve(&u("alice"), T0).await.unwrap();
    lock.reserve(&u("bob"), T0 + secs(300)).await.unwrap();
    lock.sweep(T0 + W + secs(1)).await;
    assert_eq!(lock.records().await, 1);
}

async fn concurrent_reservations_all_count(v: Variant) {
    let setup = Setup::new(v);
    let lock = Arc::new(setup.users(3, 100));
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (lock, start) = (lock.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                lock.reserve(&u("alice"), T0).await.unwrap()
            })
        })
        .collect();
    let mut proceeded = 0;
    for t in tasks {
        match t.await.unwrap() {
            Reservation::Proceed => proceeded += 1,
            r => assert!(matches!(r, Reservation::Locked { .. }), "{r:?}"),
        }
    }
    assert_eq!(proceeded, 3, "only three guesses may reach the KDF");
}

async fn a_clock_stepping_back_neither_frees_nor_shortens_a_lock(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    let alice = u("alice");
    for _ in 0..3 {
        lock.reserve(&alice, T0).await.unwrap();
    }
    // An hour back: the elapsed time reads as zero, so the lock holds.
    let back = T0 - secs(3600);
    assert!(lock.is_locked(&alice, back).await.unwrap());
    assert!(matches!(
        lock.reserve(&alice, back).await.unwrap(),
        Reservation::Locked { .. }
    ));
    // That attempt did not move the record's time backwards: the lock still runs from T0.
    assert!(
        lock.is_locked(&alice, T0 + W - Duration::from_millis(1))
            .await
            .unwrap()
    );
    assert!(!lock.is_locked(&alice, T0 + W).await.unwrap());
}

async fn a_clock_stepping_back_does_not_stop_the_sweeps(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 100);
    lock.reserve(&u("alice"), T0).await.unwrap();
    lock.sweep(T0 + W + W).await;
    lock.reserve(&u("bob"), T0).await.unwrap();
    // A day back: nothing reads as expired, yet the sweeps go on afterwards.
    let back = T0 - secs(86_400);
    lock.sweep(back).await;
    assert_eq!(lock.records().await, 1);
    lock.sweep(T0 + W).await;
    assert_eq!(lock.records().await, 0);
}

async fn a_full_table_answers_at_most_a_window_after_the_clock_steps_back(v: Variant) {
    let setup = Setup::new(v);
    let lock = setup.users(3, 1);
    lock.reserve(&u("alice"), T0).await.unwrap();
    assert!(matches!(
        lock.reserve(&u("bob"), T0).await.unwrap(),
        Reservation::Full { .. }
    ));
    let back = T0 - secs(86_400);
    match lock.reserve(&u("bob"), back).await.unwrap() {
        Reservation::Full { retry_after } => assert!(retry_after <= W),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        lock.reserve(&u("bob"), T0 + W).await.unwrap(),
        Reservation::Proceed
    );
}

async fn usernames_and_devices_are_separate_records(v: Variant) {
    let setup = Setup::new(v);
    let users = setup.users(3, 100);
    let devices: AttemptLock<String> = setup.lock(LockKind::Device, 3, W, 100);
    // A device id that happens to read like a username shares nothing with it.
    for _ in 0..3 {
        users.reserve(&u("alice"), T0).await.unwrap();
    }
    assert!(users.is_locked(&u("alice"), T0).await.unwrap());
    assert!(!devices.is_locked(&"alice".to_owned(), T0).await.unwrap());
    assert_eq!(
        devices.reserve(&"alice".to_owned(), T0).await.unwrap(),
        Reservation::Proceed
    );
    assert_eq!((users.records().await, devices.records().await), (1, 1));
    devices.succeeded(&"alice".to_owned()).await;
    assert!(users.is_locked(&u("alice"), T0).await.unwrap());
}

// ---- The address throttle and the KDF budget ----

async fn the_throttle_follows_the_injected_clock(v: Variant) {
    let setup = Setup::new(v);
    let clock = ManualClock::new(T0);
    let limits = setup.limits(2, W, 6, 100);
    let a = ip("192.0.2.1");
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
    clock.advance(secs(10));
    assert_eq!(
        limits.spend_kdf(a, clock.now(), true).await.unwrap(),
        Ok(())
    );
    clock.advance(W + secs(60));
    limits.sweep(clock.now()).await;
    assert_eq!(limits.sizes().await, (0, 0));
}

async fn failures_throttle_the_address_until_the_window_passes(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(3, W, 0, 100);
    let a = ip("198.51.100.7");
    for _ in 0..3 {
        assert!(g.admit(a, T0, true).await.unwrap().is_ok());
        g.failed(a, T0).await;
    }
    assert_eq!(
        g.admit(a, T0 + secs(10), true).await.unwrap(),
        Err(Refusal::Throttled(secs(590)))
    );
    assert_eq!(
        g.reserve(a, T0 + secs(10), true)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Throttled(secs(590))
    );
    assert!(
        g.admit(ip("198.51.100.8"), T0, true).await.unwrap().is_ok(),
        "another address is unaffected"
    );
    // The /64 neighbour of an IPv6 address shares its fate; the IPv4-mapped form is the
    // IPv4 address.
    for _ in 0..3 {
        g.failed(ip("2001:db8::1"), T0).await;
    }
    assert!(
        g.admit(ip("2001:db8::abcd"), T0, true)
            .await
            .unwrap()
            .is_err()
    );
    assert!(
        g.admit(ip("2001:db8:0:1::1"), T0, true)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        g.admit(ip("::ffff:198.51.100.7"), T0, true)
            .await
            .unwrap()
            .is_err()
    );
    assert!(
        g.admit(a, T0 + W, true).await.unwrap().is_ok(),
        "free after the window"
    );
    g.failed(a, T0 + W).await;
    assert!(
        g.admit(a, T0 + W, true).await.unwrap().is_ok(),
        "count restarted"
    );
}

async fn concurrent_address_reservations_admit_exactly_the_limit(v: Variant) {
    let setup = Setup::new(v);
    let g = Arc::new(setup.limits(10, W, 0, 100));
    let start = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (g, start) = (g.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                g.reserve(ip("198.51.100.7"), T0, false).await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_kept) => admitted += 1,
            Err(e) => assert!(matches!(e, Refusal::Throttled(_)), "{e:?}"),
        }
    }
    assert_eq!(admitted, 10, "only the limit may reach the KDF");
}

async fn a_released_reservation_is_not_a_failure(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(2, W, 0, 100);
    let a = ip("192.0.2.1");
    // Right passwords give their reservation back, however many.
    for _ in 0..5 {
        let r = g.reserve(a, T0, false).await.unwrap().unwrap();
        g.release(r).await;
    }
    assert_eq!(g.sizes().await, (0, 0), "nothing left behind");
    // Two kept (wrong passwords), then the third is refused.
    let _wrong = g.reserve(a, T0, false).await.unwrap().unwrap();
    let _wrong = g.reserve(a, T0, false).await.unwrap().unwrap();
    assert!(matches!(
        g.reserve(a, T0, false).await.unwrap(),
        Err(Refusal::Throttled(_))
    ));
    assert!(g.admit(a, T0, false).await.unwrap().is_err());
    // Held but unresolved reservations count: one given back frees one slot.
    let b = ip("192.0.2.2");
    let first = g.reserve(b, T0, false).await.unwrap().unwrap();
    let _second = g.reserve(b, T0, false).await.unwrap().unwrap();
    assert!(g.reserve(b, T0, false).await.unwrap().is_err());
    g.release(first).await;
    assert!(g.reserve(b, T0, false).await.unwrap().is_ok());
    assert!(g.reserve(b, T0, false).await.unwrap().is_err());
}

async fn reservations_keep_the_table_bounds(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(2, W, 0, 10);
    let attacker = ip("203.0.113.1");
    let _ = g.reserve(attacker, T0, false).await.unwrap().unwrap();
    let _ = g.reserve(attacker, T0, false).await.unwrap().unwrap();
    let mut unstored = Vec::new();
    for i in 0..30u32 {
        let other = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        // A full table admits a new address uncounted rather than shutting it out.
        let r = g
            .reserve(other, T0, false)
            .await
            .unwrap()
            .expect("never refused for a full table");
        if i >= 9 {
            unstored.push(r);
        }
        assert!(g.sizes().await.0 <= 10);
    }
    for r in unstored {
        g.release(r).await; // gives back nothing that was not stored
    }
    assert_eq!(g.sizes().await.0, 10);
    assert!(
        g.reserve(attacker, T0, false).await.unwrap().is_err(),
        "the live record survived the spray"
    );
    // Once the window passes, a new address is counted again.
    let fresh = ip("203.0.113.2");
    let _ = g.reserve(fresh, T0 + W, false).await.unwrap().unwrap();
    let _ = g.reserve(fresh, T0 + W, false).await.unwrap().unwrap();
    assert!(g.reserve(fresh, T0 + W, false).await.unwrap().is_err());
    // Limits off: nothing stored, nothing refused.
    let off = setup.limits(0, W, 0, 1);
    for _ in 0..100 {
        let r = off.reserve(attacker, T0, true).await.unwrap().unwrap();
        off.release(r).await;
    }
    assert_eq!(off.sizes().await.1, 0);
}

async fn reserve_sees_an_empty_kdf_budget_under_contention(v: Variant) {
    let setup = Setup::new(v);
    let a = ip("192.0.2.1");
    for max_failures in [0, 5] {
        let g = setup.limits(max_failures, W, 2, 100);
        let t = T0 + W * max_failures; // a fresh bucket for each round
        assert!(g.spend_kdf(a, t, true).await.unwrap().is_ok());
        assert!(g.spend_kdf(a, t, true).await.unwrap().is_ok());
        assert!(g.reserve(a, t, false).await.unwrap().is_ok(), "idle pool");
        let verdict = g.reserve(a, t, true).await.unwrap().map(|_| ());
        assert!(
            throttled_about(verdict, secs(30)),
            "one token takes 30 s at 2 a minute"
        );
    }
}

async fn zero_turns_limits_off(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(0, W, 0, 1);
    for _ in 0..1000 {
        g.failed(ip("192.0.2.1"), T0).await;
        assert!(
            g.spend_kdf(ip("192.0.2.1"), T0, true)
                .await
                .unwrap()
                .is_ok()
        );
    }
    assert!(g.admit(ip("192.0.2.1"), T0, true).await.unwrap().is_ok());
    assert_eq!(g.sizes().await, (0, 0));
}

async fn kdf_budget_refills_over_time(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(0, W, 6, 100); // 6 per minute: one every 10 s
    let a = ip("192.0.2.1");
    for _ in 0..6 {
        assert!(g.spend_kdf(a, T0, true).await.unwrap().is_ok());
    }
    assert_eq!(
        g.spend_kdf(a, T0, true).await.unwrap(),
        Err(Refusal::Throttled(secs(10)))
    );
    assert!(
        throttled_about(g.admit(a, T0 + secs(5), true).await.unwrap(), secs(5)),
        "admit sees the empty budget"
    );
    assert!(
        g.spend_kdf(ip("192.0.2.2"), T0, true)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(g.spend_kdf(a, T0 + secs(10), true).await.unwrap().is_ok());
    assert!(g.spend_kdf(a, T0 + secs(10), true).await.unwrap().is_err());
}

async fn an_empty_budget_refuses_only_under_contention(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(0, W, 2, 100);
    let a = ip("192.0.2.1");
    for _ in 0..5 {
        assert!(
            g.spend_kdf(a, T0, false).await.unwrap().is_ok(),
            "idle pool: never refused"
        );
    }
    assert!(g.admit(a, T0, false).await.unwrap().is_ok());
    assert!(
        g.admit(a, T0, true).await.unwrap().is_err(),
        "but the budget is spent"
    );
    assert!(g.spend_kdf(a, T0, true).await.unwrap().is_err());
}

async fn full_tables_refuse_new_addresses_and_keep_live_ones(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(2, W, 2, 10);
    let attacker = ip("203.0.113.1");
    g.failed(attacker, T0).await;
    g.failed(attacker, T0).await;
    for i in 0..30u32 {
        let other = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        g.failed(other, T0).await;
        let _ = g.spend_kdf(other, T0, true).await.unwrap();
        let _ = g.spend_kdf(other, T0, true).await.unwrap();
    }
    let (f, b) = g.sizes().await;
    assert!(f <= 10 && b <= 10, "{f} {b}");
    assert!(
        g.admit(attacker, T0, true).await.unwrap().is_err(),
        "the live record survived the spray"
    );
    assert_eq!(
        g.spend_kdf(ip("203.0.113.99"), T0, true).await.unwrap(),
        Err(Refusal::Full(secs(60)))
    );
    // A minute on, the spent buckets are full again and make room without a sweep.
    assert!(
        g.spend_kdf(ip("203.0.113.99"), T0 + secs(60), true)
            .await
            .unwrap()
            .is_ok()
    );
    g.sweep(T0 + W + secs(60)).await;
    assert_eq!(g.sizes().await, (0, 0));
}

async fn a_clock_stepping_back_keeps_failures_and_earns_no_refill(v: Variant) {
    let setup = Setup::new(v);
    let g = setup.limits(3, W, 6, 100); // 6 per minute: one every 10 s
    let a = ip("192.0.2.1");
    for _ in 0..3 {
        g.failed(a, T0).await;
    }
    let back = T0 - secs(3600);
    assert_eq!(
        g.admit(a, back, false).await.unwrap(),
        Err(Refusal::Throttled(W)),
        "an hour back, the failures are as fresh as ever"
    );
    g.failed(a, back).await;
    assert!(
        g.admit(a, T0 + W - Duration::from_millis(1), false)
            .await
            .unwrap()
            .is_err()
    );
    assert!(
        g.admit(a, T0 + W, false).await.unwrap().is_ok(),
        "the failure counted while the clock was back did not move the window back"
    );

    let b = ip("192.0.2.2");
    for _ in 0..6 {
        g.spend_kdf(b, T0, true).await.unwrap().unwrap();
    }
    let t10 = T0 + secs(10);
    assert!(
        g.spend_kdf(b, t10, true).await.unwrap().is_ok(),
        "one token refilled"
    );
    // Back to T0: no refill, and a run spent then does not rewind the bucket's time, so the
    // ten seconds from T0 to t10 are not paid out a second time.
    assert!(g.spend_kdf(b, T0, true).await.unwrap().is_err());
    assert!(
        g.spend_kdf(b, T0, false).await.unwrap().is_ok(),
        "idle pool: spent, not refused"
    );
    let t20 = T0 + secs(20);
    assert!(g.spend_kdf(b, t20, true).await.unwrap().is_ok());
    assert!(g.spend_kdf(b, t20, true).await.unwrap().is_err());
}

// ---- Only the shared variant: several instances on one database ----

/// Two instances' username locks on one database.
fn two_locks(
    attempts: u32,
    capacity: usize,
) -> (Setup, AttemptLock<Username>, AttemptLock<Username>) {
    let setup = Setup::new(Variant::Postgres);
    let a = setup.users(attempts, capacity);
    let b = AttemptLock::Postgres(PgFailLock::new(
        setup.another_instance(),
        LockKind::User,
        attempts,
        W,
        capacity,
    ));
    (setup, a, b)
}

fn two_limits(
    max_failures: u32,
    kdf_per_minute: u32,
    capacity: usize,
) -> (Setup, AddressLimits, AddressLimits) {
    let setup = Setup::new(Variant::Postgres);
    let a = setup.limits(max_failures, W, kdf_per_minute, capacity);
    let guard = AddressGuard::new(max_failures, W, kdf_per_minute, capacity);
    let b = AddressLimits::Postgres(PgAddressGuard::new(
        setup.another_instance(),
        guard.settings(),
    ));
    (setup, a, b)
}

/// `n` reservations at once, half through each lock.
async fn reserve_in_parallel(
    a: Arc<AttemptLock<Username>>,
    b: Arc<AttemptLock<Username>>,
    name: &str,
    n: usize,
) -> Vec<Reservation> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let lock = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (start, name) = (start.clone(), u(name));
            tokio::spawn(async move {
                start.wait().await;
                lock.reserve(&name, T0).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_on_two_instances_count_exactly() {
    let (_setup, a, b) = two_locks(10, 100);
    let (a, b) = (Arc::new(a), Arc::new(b));
    // Ten at once, five through each instance: all proceed, and all ten were counted.
    let results = reserve_in_parallel(a.clone(), b.clone(), "alice", 10).await;
    assert!(
        results.iter().all(|r| *r == Reservation::Proceed),
        "{results:?}"
    );
    assert!(a.is_locked(&u("alice"), T0).await.unwrap());
    assert!(b.is_locked(&u("alice"), T0).await.unwrap());
    assert_eq!(
        b.reserve(&u("alice"), T0).await.unwrap(),
        Reservation::Locked { retry_after: W },
        "the eleventh"
    );
    // Forty at once against a limit of ten: exactly ten reach the password check.
    let results = reserve_in_parallel(a.clone(), b.clone(), "bob", 40).await;
    let proceeded = results
        .iter()
        .filter(|r| **r == Reservation::Proceed)
        .count();
    assert_eq!(proceeded, 10, "{results:?}");
    assert_eq!(a.records().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_built_from_failures_on_both_instances() {
    let (_setup, a, b) = two_locks(3, 100);
    let alice = u("alice");
    assert_eq!(a.reserve(&alice, T0).await.unwrap(), Reservation::Proceed);
    assert_eq!(
        b.reserve(&alice, T0 + secs(1)).await.unwrap(),
        Reservation::Proceed
    );
    assert_eq!(
        b.reserve(&alice, T0 + secs(2)).await.unwrap(),
        Reservation::Proceed
    );
    assert!(a.is_locked(&alice, T0 + secs(2)).await.unwrap());
    assert!(matches!(
        a.reserve(&alice, T0 + secs(3)).await.unwrap(),
        Reservation::Locked { .. }
    ));
    // The lock runs from the last attempt, wherever it was made.
    assert!(
        b.is_locked(&alice, T0 + secs(3) + W - secs(1))
            .await
            .unwrap()
    );
    assert!(!b.is_locked(&alice, T0 + secs(3) + W).await.unwrap());
    // A success on one instance clears the record for both; an admin's unlock likewise.
    a.succeeded(&alice).await;
    assert_eq!(b.records().await, 0);
    for _ in 0..4 {
        a.reserve(&alice, T0 + secs(10)).await.unwrap();
    }
    b.forgive(&alice, (T0 + secs(10)).as_ms()).await;
    assert!(!a.is_locked(&alice, T0 + secs(10)).await.unwrap());
    // A release on the other instance gives back what this one reserved.
    for _ in 0..3 {
        a.reserve(&alice, T0 + secs(20)).await.unwrap();
    }
    b.release(&alice).await;
    assert!(!a.is_locked(&alice, T0 + secs(20)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_empties_the_record_in_place_and_the_sweep_reclaims_it() {
    let (setup, a, b) = two_locks(3, 100);
    let client = crate::store::testing::pg_client(setup.db.as_ref().unwrap().url()).await;
    // Rows stored and the trigger-kept row count, which must agree.
    let rows = || async {
        let r = client
            .query_one(
                "SELECT (SELECT count(*) FROM fail_lock),
                        (SELECT COALESCE(sum(n), 0)::bigint FROM fail_lock_rows)",
                &[],
            )
            .await
            .unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1))
    };
    let alice = u("alice");
    for round in 0..3 {
        let at = T0 + secs(round * 10);
        a.reserve(&alice, at).await.unwrap();
        a.reserve(&alice, at).await.unwrap();
        b.succeeded(&alice).await;
        // Cleared for every rule: not counted, not locked, and the next run starts afresh.
        assert_eq!(a.records().await, 0);
        assert!(!b.is_locked(&alice, at).await.unwrap());
        assert_eq!(rows().await, (1, 1), "the row is kept, emptied");
    }
    for _ in 0..3 {
        assert_eq!(
            a.reserve(&alice, T0 + secs(40)).await.unwrap(),
            Reservation::Proceed
        );
    }
    assert!(matches!(
        b.reserve(&alice, T0 + secs(40)).await.unwrap(),
        Reservation::Locked { .. }
    ));
    b.succeeded(&alice).await;
    // Emptied means expired: the sweep takes it inside the window, and the count follows.
    a.sweep(T0 + secs(41)).await;
    assert_eq!(rows().await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_table_refuses_new_names_on_every_instance_without_evicting() {
    let (_setup, a, b) = two_locks(3, 10);
    let victim = u("victim");
    for _ in 0..3 {
        a.reserve(&victim, T0).await.unwrap();
    }
    for i in 0..9 {
        assert_eq!(
            b.reserve(&u(&format!("spray{i}")), T0 + secs(1))
                .await
                .unwrap(),
            Reservation::Proceed
        );
    }
    for lock in [&a, &b] {
        assert_eq!(
            lock.reserve(&u("newcomer"), T0 + secs(2)).await.unwrap(),
            Reservation::Full {
                retry_after: W - secs(2)
            }
        );
    }
    assert_eq!(a.records().await, 10);
    assert!(b.is_locked(&victim, T0 + secs(2)).await.unwrap());
    // A name already stored is still counted when the table is full.
    assert!(matches!(
        b.reserve(&victim, T0 + secs(2)).await.unwrap(),
        Reservation::Locked { .. }
    ));
    // One success anywhere makes room for one new name.
    a.succeeded(&u("spray0")).await;
    assert_eq!(
        b.reserve(&u("newcomer"), T0 + secs(3)).await.unwrap(),
        Reservation::Proceed
    );
    assert!(matches!(
        a.reserve(&u("another"), T0 + secs(3)).await.unwrap(),
        Reservation::Full { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_new_names_on_a_full_table_never_evict() {
    let (_setup, a, b) = two_locks(3, 20);
    let (a, b) = (Arc::new(a), Arc::new(b));
    for _ in 0..3 {
        a.reserve(&u("victim"), T0).await.unwrap();
    }
    let start = Arc::new(tokio::sync::Barrier::new(60));
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let lock = if i % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                lock.reserve(&u(&format!("spray{i}")), T0).await.unwrap()
            })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        if t.await.unwrap() == Reservation::Proceed {
            stored += 1;
        }
    }
    // The bound is read before concurrent inserts commit: it may be passed by at most the
    // number of statements in flight (two pools of four connections).
    let records = a.records().await;
    assert_eq!(records, stored + 1);
    assert!((20..=20 + 8).contains(&records), "{records}");
    assert!(b.is_locked(&u("victim"), T0).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_throttle_is_shared_by_the_instances() {
    let (_setup, a, b) = two_limits(3, 0, 100);
    let addr = ip("198.51.100.7");
    let kept = a.reserve(addr, T0, false).await.unwrap().unwrap();
    let _kept = b.reserve(addr, T0, false).await.unwrap().unwrap();
    b.failed(addr, T0 + secs(5)).await;
    for limits in [&a, &b] {
        assert_eq!(
            limits.admit(addr, T0 + secs(10), false).await.unwrap(),
            Err(Refusal::Throttled(secs(595)))
        );
        assert!(
            limits
                .reserve(addr, T0 + secs(10), false)
                .await
                .unwrap()
                .is_err()
        );
    }
    // A reservation made on one instance is given back on the shared record.
    a.release(kept).await;
    assert!(b.admit(addr, T0 + secs(10), false).await.unwrap().is_ok());
    assert_eq!(a.sizes().await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_address_reservations_on_two_instances_admit_exactly_the_limit() {
    let (_setup, a, b) = two_limits(10, 0, 100);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let start = Arc::new(tokio::sync::Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let g = if i % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                g.reserve(ip("2001:db8::7"), T0, false)
                    .await
                    .unwrap()
                    .is_ok()
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kdf_budget_is_shared_by_the_instances() {
    let (_setup, a, b) = two_limits(0, 4, 100);
    let addr = ip("192.0.2.1");
    assert!(a.spend_kdf(addr, T0, true).await.unwrap().is_ok());
    assert!(b.spend_kdf(addr, T0, true).await.unwrap().is_ok());
    assert!(a.spend_kdf(addr, T0, true).await.unwrap().is_ok());
    assert!(b.spend_kdf(addr, T0, true).await.unwrap().is_ok());
    for limits in [&a, &b] {
        assert!(throttled_about(
            limits.spend_kdf(addr, T0, true).await.unwrap(),
            secs(15)
        ));
        assert!(limits.admit(addr, T0, true).await.unwrap().is_err());
        assert!(limits.reserve(addr, T0, true).await.unwrap().is_err());
    }
    // Fifteen seconds refill one run, for whichever instance asks first.
    assert!(
        b.spend_kdf(addr, T0 + secs(16), true)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        a.spend_kdf(addr, T0 + secs(16), true)
            .await
            .unwrap()
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_closed() {
    let setup = Setup::new(Variant::Postgres);
    let lock = setup.users(3, 100);
    let limits = setup.limits(3, W, 6, 100);
    let alice = u("alice");
    lock.reserve(&alice, T0).await.unwrap();
    let db = setup.db.as_ref().unwrap();
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    let admin = crate::store::testing::pg_client(&crate::store::testing::pg_admin_url()).await;
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    assert!(matches!(
        lock.reserve(&alice, T0).await,
        Err(LimitsError::Unavailable(_))
    ));
    assert!(lock.is_locked(&alice, T0).await.is_err());
    let a = ip("192.0.2.1");
    assert!(limits.reserve(a, T0, true).await.is_err());
    assert!(limits.admit(a, T0, true).await.is_err());
    assert!(limits.spend_kdf(a, T0, false).await.is_err());
    // Bookkeeping only logs.
    lock.release(&alice).await;
    lock.sweep(T0).await;
    assert_eq!(lock.records().await, 0);
}

// ---- The wiring: the state picks the variant from the store ----

fn state_on(store: Store) -> crate::state::State {
    use crate::security::password::{Kdf, KdfParams, KdfPool};
    let kdf = Kdf::new(KdfParams {
        m_kib: 8,
        t: 1,
        p: 1,
    })
    .unwrap();
    let audit = Arc::new(crate::audit::AuditLog::new(store.clone(), secs(60)));
    crate::state::AppState::build(crate::state::Parts {
        store,
        kdf: KdfPool::new(kdf, 1, 4),
        clock: Arc::new(ManualClock::new(T0)),
        key: crate::security::secret::SecretKey::from_bytes(&[7; 32]).unwrap(),
        sessions: crate::security::session::SessionPolicy {
            secure: false,
            idle: secs(3600),
            max: secs(86_400),
            domain: None,
        },
        audit,
        guard: AddressGuard::new(2, W, 6, 100),
        lock_attempts: 3,
        lock_window: W,
        lock_capacity: 100,
        public_url: None,
        trusted_proxies: Vec::new(),
        forward: Default::default(),
        body_timeout: secs(10),
        sign_up_open: true,
        audit_retention: secs(86_400),
        mail: None,
        email_verification: Default::default(),
        reset: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_tables_in_memory() {
    let db = TestDb::new(Backend::Sqlite);
    let state = state_on(db.store());
    assert!(matches!(*state.lock, AttemptLock::Memory(_)));
    assert!(matches!(*state.device_lock, AttemptLock::Memory(_)));
    assert!(matches!(*state.guard, AddressLimits::Memory(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_postgresql_share_the_state_s_lock_and_limits() {
    let db = TestDb::new(Backend::Postgres);
    let (one, two) = (state_on(db.store()), state_on(db.store()));
    let alice = u("alice");
    for _ in 0..3 {
        one.lock.reserve(&alice, T0).await.unwrap();
    }
    assert!(two.lock.is_locked(&alice, T0).await.unwrap());
    let device = "d1".to_owned();
    for _ in 0..3 {
        two.device_lock.reserve(&device, T0).await.unwrap();
    }
    assert!(one.device_lock.is_locked(&device, T0).await.unwrap());
    assert!(
        !one.device_lock
            .is_locked(&"alice".to_owned(), T0)
            .await
            .unwrap()
    );
    let a = ip("192.0.2.1");
    one.guard.failed(a, T0).await;
    two.guard.failed(a, T0).await;
    assert!(one.guard.admit(a, T0, false).await.unwrap().is_err());
    // The housekeeping's calls, on either instance, see and sweep the shared tables.
    assert_eq!(
        (two.lock.records().await, two.device_lock.records().await),
        (1, 1)
    );
    assert_eq!(two.guard.sizes().await, (1, 0));
    one.lock.sweep(T0 + W).await;
    one.device_lock.sweep(T0 + W).await;
    one.guard.sweep(T0 + W).await;
    assert_eq!(
        (two.lock.records().await, two.device_lock.records().await),
        (0, 0)
    );
    assert_eq!(two.guard.sizes().await, (0, 0));
}
