//! Unit tests of the address throttle and KDF budget, on an explicit timeline.

use super::*;

/// Any fixed wall-clock time: the rules only compare differences.
const T0: Timestamp = Timestamp::from_ms(1_795_000_000_000);

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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
    let a = ip("192.0.2.1");
    assert!(g.spend_kdf(a, t0, true).is_ok());
    assert!(g.spend_kdf(a, t0, true).is_ok());
    assert!(g.reserve(a, t0, false).is_ok(), "idle pool");
    assert!(matches!(g.reserve(a, t0, true), Err(Refusal::Throttled(_))));
}

#[test]
fn zero_turns_limits_off() {
    let g = AddressGuard::new(0, W, 0, 1);
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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
    let t0 = T0;
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

#[test]
fn a_clock_stepping_back_keeps_failures_and_earns_no_refill() {
    let g = AddressGuard::new(3, W, 6, 100); // 6 per minute: one every 10 s
    let a = ip("192.0.2.1");
    let t0 = T0;
    for _ in 0..3 {
        g.failed(a, t0);
    }
    let back = t0 - Duration::from_secs(3600);
    assert_eq!(
        g.admit(a, back, false),
        Err(Refusal::Throttled(W)),
        "an hour back, the failures are as fresh as ever"
    );
    g.failed(a, back);
    assert!(
        g.admit(a, t0 + W - Duration::from_millis(1), false)
            .is_err()
    );
    assert!(
        g.admit(a, t0 + W, false).is_ok(),
        "the failure counted while the clock was back did not move the window back"
    );

    let b = ip("192.0.2.2");
    for _ in 0..6 {
        g.spend_kdf(b, t0, true).unwrap();
    }
    let t10 = t0 + Duration::from_secs(10);
    assert!(g.spend_kdf(b, t10, true).is_ok(), "one token refilled");
    // Back to t0: no refill, and a run spent then does not rewind the bucket's time, so the
    // ten seconds from t0 to t10 are not paid out a second time.
    assert!(g.spend_kdf(b, t0, true).is_err());
    assert!(
        g.spend_kdf(b, t0, false).is_ok(),
        "idle pool: spent, not refused"
    );
    let t20 = t0 + Duration::from_secs(20);
    assert!(g.spend_kdf(b, t20, true).is_ok());
    assert!(g.spend_kdf(b, t20, true).is_err());
}
