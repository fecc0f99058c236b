//! Unit tests of the fail-lock rules, on an explicit timeline.

use super::*;

/// Any fixed wall-clock time: the rules only compare differences.
const T0: Timestamp = Timestamp::from_ms(1_795_000_000_000);

fn u(s: &str) -> Username {
    Username::parse(s).unwrap()
}

const W: Duration = Duration::from_secs(600);

#[test]
fn three_strikes_then_locked_even_for_the_right_password() {
    let lock = FailLock::new(3, W, 100);
    let t0 = T0;
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
    let t0 = T0;
    let alice = u("alice");
    for _ in 0..4 {
        lock.reserve(&alice, t0);
    }
    assert!(lock.is_locked(&alice, t0));
    // An unlock recorded before the run began changes nothing.
    lock.forgive(&alice, t0.as_ms() - 60_000);
    assert!(lock.is_locked(&alice, t0));
    lock.forgive(&alice, t0.as_ms());
    assert!(!lock.is_locked(&alice, t0));
    // A new run after the unlock counts in full: the old unlock does not forgive it.
    let unlocked = t0.as_ms();
    let t1 = t0 + Duration::from_millis(5);
    for _ in 0..3 {
        assert_eq!(lock.reserve(&alice, t1), Reservation::Proceed);
    }
    lock.forgive(&alice, unlocked);
    assert!(matches!(
        lock.reserve(&alice, t1),
        Reservation::Locked { .. }
    ));
}

#[test]
fn success_before_the_lock_clears_the_record() {
    let lock = FailLock::new(3, W, 100);
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
    lock.reserve(&u("alice"), t0);
    lock.reserve(&u("bob"), t0 + Duration::from_secs(300));
    lock.sweep(t0 + W + Duration::from_secs(1));
    assert_eq!(lock.len(), 1);
}

#[test]
fn concurrent_reservations_all_count() {
    let lock = std::sync::Arc::new(FailLock::new(3, W, 100));
    let t0 = T0;
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

#[test]
fn a_clock_stepping_back_neither_frees_nor_shortens_a_lock() {
    let lock = FailLock::new(3, W, 100);
    let alice = u("alice");
    let t0 = T0;
    for _ in 0..3 {
        lock.reserve(&alice, t0);
    }
    // An hour back: the elapsed time reads as zero, so the lock holds.
    let back = t0 - Duration::from_secs(3600);
    assert!(lock.is_locked(&alice, back));
    assert!(matches!(
        lock.reserve(&alice, back),
        Reservation::Locked { .. }
    ));
    // That attempt did not move the record's time backwards: the lock still runs from t0.
    assert!(lock.is_locked(&alice, t0 + W - Duration::from_millis(1)));
    assert!(!lock.is_locked(&alice, t0 + W));
}

#[test]
fn a_clock_stepping_back_does_not_stop_the_sweeps() {
    let lock = FailLock::new(3, W, 100);
    let t0 = T0;
    lock.reserve(&u("alice"), t0);
    lock.sweep(t0 + W + W); // sweeps (nothing live), remembered as the last sweep
    lock.reserve(&u("bob"), t0);
    // The clock steps back by a day. Sweeps go on: bob is forgotten once his window is over,
    // not only when the clock is back past the last sweep's time.
    let back = t0 - Duration::from_secs(86_400);
    lock.sweep(back);
    assert_eq!(lock.len(), 1);
    lock.sweep(t0 + W);
    assert!(lock.is_empty());
}

#[test]
fn a_stale_full_hint_is_not_trusted_after_the_clock_steps_back() {
    let lock = FailLock::new(3, W, 1);
    let t0 = T0;
    lock.reserve(&u("alice"), t0);
    assert!(matches!(
        lock.reserve(&u("bob"), t0),
        Reservation::Full { .. }
    ));
    // Hint: full until t0 + W. A day back, the hint lies more than a window ahead; the table
    // is rescanned (alice still reads live) and the answer is at most a window.
    let back = t0 - Duration::from_secs(86_400);
    match lock.reserve(&u("bob"), back) {
        Reservation::Full { retry_after } => assert!(retry_after <= W),
        other => panic!("{other:?}"),
    }
    assert_eq!(lock.reserve(&u("bob"), t0 + W), Reservation::Proceed);
}
