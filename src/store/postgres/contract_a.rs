//! The store's contract for users, sessions, groups and audit, on both backends
//! (`both_backends!`): what the SQLite-only tests asserted, now asserted of either backend, plus
//! what only several stores on one database can show (two "processes": two stores).

use std::time::{Duration, Instant};

use crate::both_backends;
use crate::domain::{Email, GroupName, Username};
use crate::store::testing::{Backend, HASH, TestDb, pg_client};
use crate::store::{AuditEvent, AuditFilter, NewSession, Store, Taken, User};

both_backends!(
    uniqueness_of_username_email_and_retired_names,
    concurrent_sign_ups_across_stores_give_one_user_per_name_and_address,
    sessions_need_an_unchanged_password_and_an_active_user,
    open_session_records_the_sign_in_and_replaces_the_old_session,
    the_fifty_first_session_drops_the_oldest,
    change_password_is_conditional_and_ends_other_sessions,
    a_sign_in_racing_a_password_change_does_not_outlive_it,
    revoke_only_own_sessions_and_purge_expired,
    touches_are_batched_and_never_move_last_seen_back,
    a_sign_out_on_one_store_is_seen_by_another_within_100_ms,
    group_changes_reach_session_lookups_in_byte_order,
    audit_writes_bumps_filters_and_purges,
);

const HASH2: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$b3RoZXJvdGhlcm90aGVyMQ";

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn email(s: &str) -> Option<Email> {
    Email::parse_optional(s).unwrap()
}

async fn user(s: &Store, n: &str) -> User {
    s.create_user(&name(n), None, None, HASH, 1_000)
        .await
        .unwrap()
        .unwrap()
}

fn new_session(user_id: i64, token: u8, now: i64) -> NewSession {
    NewSession {
        token_hash: [token; 32],
        user_id,
        password_changed_ms: 1_000,
        now_ms: now,
        expires_ms: now + 100_000,
        user_agent: Some("test".into()),
        ip: Some("127.0.0.1".into()),
        replaces: None,
    }
}

fn signed_in(user_id: i64, at: i64) -> AuditEvent {
    AuditEvent {
        at_ms: at,
        last_ms: at,
        count: 1,
        event: "sign_in",
        outcome: "ok",
        username: None,
        user_id: Some(user_id),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("x".repeat(1000)),
        detail: None,
    }
}

async fn open(s: &Store, session: NewSession) -> Option<i64> {
    let at = session.now_ms;
    let user_id = session.user_id;
    s.open_session(session, signed_in(user_id, at))
        .await
        .unwrap()
}

/// Runs `sql` on the database behind the store's back, as an operator or another program
/// would (the same SQL on both backends).
async fn exec(db: &TestDb, sql: &str) {
    match db.backend {
        Backend::Sqlite => rusqlite::Connection::open(&db.location)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        Backend::Postgres => pg_client(db.url()).await.batch_execute(sql).await.unwrap(),
    }
}

async fn uniqueness_of_username_email_and_retired_names(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    s.create_user(
        &name("ann"),
        email("Ann@Example.com").as_ref(),
        None,
        HASH,
        1,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        s.create_user(&name("ANN"), None, None, HASH, 1)
            .await
            .unwrap(),
        Err(Taken::Username)
    );
    let upper = email("ann@EXAMPLE.COM");
    assert_eq!(
        s.create_user(&name("ann2"), upper.as_ref(), None, HASH, 1)
            .await
            .unwrap(),
        Err(Taken::Email)
    );
    assert_eq!(
        s.taken(&name("ann"), upper.as_ref()).await.unwrap(),
        Some(Taken::Username),
        "the username is named first"
    );
    assert_eq!(
        s.taken(&name("bob"), upper.as_ref()).await.unwrap(),
        Some(Taken::Email)
    );
    assert_eq!(s.taken(&name("bob"), None).await.unwrap(), None);
    // Two users without email are fine (NULLs are distinct).
    user(&s, "carol").await;
    user(&s, "dave").await;
    // A deleted user's name is retired: taken for good; their address is free again.
    exec(&db, "DELETE FROM users WHERE username = 'ann'").await;
    assert_eq!(
        s.taken(&name("ann"), None).await.unwrap(),
        Some(Taken::Username)
    );
    assert_eq!(
        s.create_user(&name("ann"), None, None, HASH, 2)
            .await
            .unwrap(),
        Err(Taken::Username)
    );
    let eve = s
        .create_user(&name("eve"), upper.as_ref(), None, HASH, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(eve.email.as_deref(), Some("ann@EXAMPLE.COM"));
    let creds = s.credentials("eve").await.unwrap().unwrap();
    assert_eq!(
        (creds.user_id, creds.email.as_deref(), creds.active),
        (eve.id, Some("ann@EXAMPLE.COM"), true)
    );
    assert_eq!(creds.password_changed_ms, 2);
    assert_eq!(
        s.credentials_by_id(eve.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        HASH
    );
    assert!(s.credentials("ann").await.unwrap().is_none());
    assert!(s.credentials_by_id(eve.id + 100).await.unwrap().is_none());
}

async fn concurrent_sign_ups_across_stores_give_one_user_per_name_and_address(b: Backend) {
    // Three stores: three "processes" on one database.
    let db = TestDb::new(b);
    let stores = [db.store(), db.store(), db.store()];
    for round in 0..10 {
        // One name, three different addresses: one user, two Taken::Username.
        let n = name(&format!("racer{round}"));
        let mails: Vec<_> = (0..3)
            .map(|i| email(&format!("r{round}-{i}@example.com")))
            .collect();
        let outcomes = futures_util::future::join_all(
            stores
                .iter()
                .zip(&mails)
                .map(|(s, m)| s.create_user(&n, m.as_ref(), None, HASH, 1)),
        )
        .await;
        let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == Err(Taken::Username))
                .count(),
            2,
            "{outcomes:?}"
        );
        // Three names, one address (in different case): one user, two Taken::Email.
        let m = email(&format!("Shared{round}@Example.com"));
        let shouted = email(&format!("SHARED{round}@EXAMPLE.COM"));
        let outcomes = futures_util::future::join_all(stores.iter().enumerate().map(|(i, s)| {
            let n = name(&format!("mail{round}_{i}"));
            let m = if i == 0 { m.clone() } else { shouted.clone() };
            async move { s.create_user(&n, m.as_ref(), None, HASH, 1).await }
        }))
        .await;
        let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes.iter().filter(|o| **o == Err(Taken::Email)).count(),
            2,
            "{outcomes:?}"
        );
    }
}

async fn sessions_need_an_unchanged_password_and_an_active_user(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let u = user(&s, "alice").await;
    let mut stale = new_session(u.id, 1, 2_000);
    stale.password_changed_ms = 999;
    assert_eq!(open(&s, stale).await, None, "password changed meanwhile");
    // A rehash (same password, new PHC string) does not stop a sign-in.
    assert!(
        s.rehash(u.id, HASH.into(), HASH2.into(), 1_500)
            .await
            .unwrap()
    );
    assert!(
        !s.rehash(u.id, HASH.into(), HASH2.into(), 1_600)
            .await
            .unwrap(),
        "only from the hash it replaces"
    );
    let id = open(&s, new_session(u.id, 2, 2_000)).await.unwrap();
    let rec = s.session(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.user.username, "alice");
    assert!(rec.state.user_active);
    assert!(s.session(&[3; 32]).await.unwrap().is_none());
    // A disabled user gets no session.
    exec(&db, "UPDATE users SET active = FALSE").await;
    assert_eq!(open(&s, new_session(u.id, 4, 2_000)).await, None);
    // Deleting a user deletes their sessions.
    exec(&db, "DELETE FROM users").await;
    until_gone(&s, [2; 32], Duration::from_secs(1)).await;
    assert_eq!(s.count_live_sessions(0).await.unwrap(), 0);
}

async fn open_session_records_the_sign_in_and_replaces_the_old_session(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let u = user(&s, "alice").await;
    open(&s, new_session(u.id, 1, 2_000)).await.unwrap();
    let mut rotated = new_session(u.id, 2, 3_000);
    rotated.replaces = Some([1; 32]);
    let id = open(&s, rotated).await.unwrap();
    assert!(s.session(&[1; 32]).await.unwrap().is_none(), "replaced");
    assert_eq!(s.session(&[2; 32]).await.unwrap().unwrap().id, id);
    // A refused sign-in writes no event.
    let mut stale = new_session(u.id, 3, 4_000);
    stale.password_changed_ms = 1;
    assert_eq!(open(&s, stale).await, None);
    let events = s.recent_sign_ins(u.id, 10).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        [3_000, 2_000],
        "newest first"
    );
    assert_eq!(events[0].user_agent.as_ref().unwrap().len(), 256);
}

async fn the_fifty_first_session_drops_the_oldest(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let u = user(&s, "alice").await;
    for i in 0..50u8 {
        open(&s, new_session(u.id, i, 2_000 + i as i64))
            .await
            .unwrap();
    }
    // Read (and cache) the oldest before the cap ends it.
    assert!(s.session(&[0; 32]).await.unwrap().is_some());
    assert_eq!(
        s.sessions_of(u.id, 2_100, 1_000_000).await.unwrap().len(),
        50
    );
    open(&s, new_session(u.id, 50, 2_050)).await.unwrap();
    let list = s.sessions_of(u.id, 2_100, 1_000_000).await.unwrap();
    assert_eq!(list.len(), 50);
    assert_eq!(list[0].created_ms, 2_050, "newest first");
    assert_eq!(list[49].created_ms, 2_001);
    assert!(
        s.session(&[0; 32]).await.unwrap().is_none(),
        "the oldest went"
    );
    assert!(s.session(&[1; 32]).await.unwrap().is_some());
    // Another user's sessions are not counted.
    let bob = user(&s, "bob").await;
    open(&s, new_session(bob.id, 100, 2_060)).await.unwrap();
    assert!(s.session(&[1; 32]).await.unwrap().is_some());
    // Sign-ins racing on two stores still leave at most 50.
    let other = db.store();
    other.count_live_sessions(0).await.unwrap();
    for round in 0..20u8 {
        let at = 3_000 + 2 * round as i64;
        let (x, y) = tokio::join!(
            open(&s, new_session(u.id, 120 + 2 * round, at)),
            open(&other, new_session(u.id, 121 + 2 * round, at + 1))
        );
        assert!(x.is_some() && y.is_some());
        let list = s.sessions_of(u.id, 2_100, 1_000_000).await.unwrap();
        assert_eq!(list.len(), 50, "round {round}");
    }
    let list = s.sessions_of(u.id, 2_100, 1_000_000).await.unwrap();
    assert_eq!(list[49].created_ms, 2_041, "the oldest went first");
}

async fn change_password_is_conditional_and_ends_other_sessions(b: Backend) {
    let db = TestDb::new(b);
    let (s, other) = (db.store(), db.store());
    let u = user(&s, "alice").await;
    open(&s, new_session(u.id, 1, 2_000)).await.unwrap();
    open(&s, new_session(u.id, 2, 2_000)).await.unwrap();
    // The other store has them cached.
    assert!(other.session(&[1; 32]).await.unwrap().is_some());
    assert!(s.session(&[2; 32]).await.unwrap().is_some());
    let mut rotated = new_session(u.id, 3, 3_000);
    rotated.password_changed_ms = 3_000;
    let id = s
        .change_password(1_000, HASH2.into(), rotated)
        .await
        .unwrap();
    assert!(id.is_some());
    assert!(s.session(&[1; 32]).await.unwrap().is_none());
    assert!(s.session(&[2; 32]).await.unwrap().is_none());
    let rec = s.session(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(Some(rec.id), id);
    assert_eq!(rec.state.password_changed_ms, 3_000);
    let creds = s.credentials_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(
        (creds.password_hash.as_str(), creds.password_changed_ms),
        (HASH2, 3_000)
    );
    until_gone(&other, [1; 32], Duration::from_secs(1)).await;
    // A second change verified before the first one fails: it was changed meanwhile.
    let mut late = new_session(u.id, 4, 4_000);
    late.password_changed_ms = 4_000;
    assert!(
        s.change_password(1_000, HASH.into(), late)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.session(&[4; 32]).await.unwrap().is_none());
    assert!(
        s.session(&[3; 32]).await.unwrap().is_some(),
        "nothing ended"
    );
    // A sign-in verified against the old password cannot outlive the change.
    assert_eq!(open(&s, new_session(u.id, 5, 4_000)).await, None);
    // Rehash from the old hash cannot bring the old password back.
    assert!(
        !s.rehash(u.id, HASH.into(), HASH.into(), 5_000)
            .await
            .unwrap()
    );
    assert!(
        s.rehash(u.id, HASH2.into(), HASH.into(), 5_000)
            .await
            .unwrap()
    );
    // A disabled user cannot change their password.
    exec(&db, "UPDATE users SET active = FALSE").await;
    let mut disabled = new_session(u.id, 6, 6_000);
    disabled.password_changed_ms = 6_000;
    assert!(
        s.change_password(3_000, HASH2.into(), disabled)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_sign_in_racing_a_password_change_does_not_outlive_it(b: Backend) {
    let db = TestDb::new(b);
    let (s, other) = (db.store(), db.store());
    let u = user(&s, "alice").await;
    other.count_live_sessions(0).await.unwrap();
    for round in 0..20u8 {
        let changed_ms = 1_000 + round as i64;
        // Verified against the password of `changed_ms`, while the other store changes it.
        let mut signing_in = new_session(u.id, 2 * round, 2_000);
        signing_in.password_changed_ms = changed_ms;
        let mut changing = new_session(u.id, 2 * round + 1, 2_000);
        changing.password_changed_ms = changed_ms + 1;
        let (opened, changed) = tokio::join!(
            open(&s, signing_in),
            other.change_password(changed_ms, HASH2.into(), changing)
        );
        let changed = changed.unwrap().expect("nothing else changed the password");
        let left: Vec<i64> = s
            .sessions_of(u.id, 2_000, 1_000_000)
            .await
            .unwrap()
            .iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(
            left,
            [changed],
            "round {round}: the sign-in ({opened:?}) outlived the change"
        );
    }
}

async fn revoke_only_own_sessions_and_purge_expired(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let a = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let sa = open(&s, new_session(a.id, 1, 2_000)).await.unwrap();
    let sb = open(&s, new_session(bob.id, 2, 2_000)).await.unwrap();
    assert!(!s.delete_user_session(a.id, sb).await.unwrap());
    assert!(s.session(&[2; 32]).await.unwrap().is_some());
    assert!(s.session(&[1; 32]).await.unwrap().is_some());
    assert!(s.delete_user_session(a.id, sa).await.unwrap());
    assert!(s.session(&[1; 32]).await.unwrap().is_none());
    open(&s, new_session(a.id, 3, 2_000)).await.unwrap();
    let keep = open(&s, new_session(a.id, 4, 2_000)).await.unwrap();
    assert!(s.session(&[3; 32]).await.unwrap().is_some());
    assert_eq!(s.delete_other_sessions(a.id, keep).await.unwrap(), 1);
    assert!(s.session(&[3; 32]).await.unwrap().is_none());
    assert_eq!(s.count_live_sessions(2_000).await.unwrap(), 2);
    // expires_at = 102_000
    assert_eq!(s.count_live_sessions(102_000).await.unwrap(), 0);
    assert_eq!(
        s.purge_expired_sessions(50_000, 1_000_000).await.unwrap(),
        0
    );
    assert_eq!(
        s.purge_expired_sessions(102_000, 1_000_000).await.unwrap(),
        2
    );
    assert!(s.session(&[4; 32]).await.unwrap().is_none());
    open(&s, new_session(a.id, 5, 2_000)).await.unwrap();
    s.touch_later(keep, 1);
    assert_eq!(s.flush_touches().await.unwrap(), 1);
    assert_eq!(
        s.purge_expired_sessions(2_500, 500).await.unwrap(),
        1,
        "idle limit"
    );
    // Sign-out by token hash: the session goes, an unknown hash is no error.
    open(&s, new_session(a.id, 6, 3_000)).await.unwrap();
    s.delete_session_by_hash([6; 32]).await.unwrap();
    s.delete_session_by_hash([6; 32]).await.unwrap();
    assert!(s.session(&[6; 32]).await.unwrap().is_none());
}

async fn touches_are_batched_and_never_move_last_seen_back(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let a = user(&s, "alice").await;
    let id = open(&s, new_session(a.id, 9, 5_000)).await.unwrap();
    let other = open(&s, new_session(a.id, 10, 5_000)).await.unwrap();
    s.touch_later(id, 7_000);
    s.touch_later(id, 6_000);
    s.touch_later(other, 8_000);
    assert_eq!(s.flush_touches().await.unwrap(), 2);
    assert_eq!(s.flush_touches().await.unwrap(), 0);
    s.touch_later(id, 5_500);
    s.flush_touches().await.unwrap();
    // A fresh store reads the database (no cached copy from before the flush).
    let fresh = db.store();
    let last_seen = |t: u8| {
        let fresh = fresh.clone();
        async move {
            fresh
                .session(&[t; 32])
                .await
                .unwrap()
                .unwrap()
                .state
                .last_seen_ms
        }
    };
    assert_eq!(last_seen(9).await, 7_000);
    assert_eq!(last_seen(10).await, 8_000);
    let listed = s.sessions_of(a.id, 8_000, 1_000_000).await.unwrap();
    assert_eq!(listed.iter().map(|l| l.last_seen_ms).max(), Some(8_000));
    // A touch for a session deleted meanwhile is harmless.
    s.delete_session_by_hash([9; 32]).await.unwrap();
    s.touch_later(id, 8_000);
    assert_eq!(s.flush_touches().await.unwrap(), 1);
}

/// Waits until PostgreSQL store `s` trusts its session cache (its listener is up), so what
/// follows goes through the cache and its notifications, not around them.
async fn until_cache_trusted(s: &Store) {
    let Store::Postgres(p) = s else { return };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.inner.cache.is_trusted() {
        assert!(
            Instant::now() < deadline,
            "the cache listener never came up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `s` answers `hash` from its cache (always true on SQLite: nothing to check there).
fn cached(s: &Store, hash: &[u8; 32]) -> bool {
    match s {
        Store::Postgres(p) => matches!(
            p.inner.cache.get(hash, Instant::now()),
            super::cache::Lookup::Hit(Some(_))
        ),
        Store::Sqlite(_) => true,
    }
}

/// Polls `s` until the session is gone; fails past `within`. Returns how long it took.
async fn until_gone(s: &Store, hash: [u8; 32], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if s.session(&hash).await.unwrap().is_none() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still valid on the other store after {:?}",
            start.elapsed()
        );
        // A short pause between polls, not a wait for the answer: keeps the 2 cores free
        // for the listener that must deliver the notification.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn a_sign_out_on_one_store_is_seen_by_another_within_100_ms(b: Backend) {
    let db = TestDb::new(b);
    let (a, other) = (db.store(), db.store());
    until_cache_trusted(&other).await;
    let u = user(&a, "alice").await;
    for round in 0..5u8 {
        let hash = [round; 32];
        open(&a, new_session(u.id, round, 2_000)).await.unwrap();
        // The other store reads it once, then answers from its cache.
        assert!(other.session(&hash).await.unwrap().is_some());
        assert!(other.session(&hash).await.unwrap().is_some());
        assert!(
            cached(&other, &hash),
            "round {round}: not served from the cache"
        );
        a.delete_session_by_hash(hash).await.unwrap();
        // The store that signed out knows at once.
        assert!(a.session(&hash).await.unwrap().is_none());
        let took = until_gone(&other, hash, Duration::from_millis(100)).await;
        assert!(took < Duration::from_millis(100), "round {round}: {took:?}");
    }
}

async fn group_changes_reach_session_lookups_in_byte_order(b: Backend) {
    let db = TestDb::new(b);
    let (a, other) = (db.store(), db.store());
    until_cache_trusted(&other).await;
    let u = user(&a, "ann").await;
    let g = |n: &str| GroupName::parse(n).unwrap();
    open(&a, new_session(u.id, 1, 2_000)).await.unwrap();
    assert!(
        other
            .session(&[1; 32])
            .await
            .unwrap()
            .unwrap()
            .groups
            .is_empty()
    );
    for n in ["ab", "a_b", "a-b"] {
        assert!(
            a.add_group(&name("ann"), &g(n))
                .await
                .unwrap()
                .unwrap()
                .changed
        );
    }
    // Byte order, whatever the database's locale: '-' < '_' < 'b'.
    let sorted = vec![g("a-b"), g("a_b"), g("ab")];
    assert_eq!(a.groups_of(u.id).await.unwrap(), sorted);
    let want: Vec<String> = sorted.iter().map(|n| n.as_str().to_owned()).collect();
    assert_eq!(a.session(&[1; 32]).await.unwrap().unwrap().groups, want);
    let start = Instant::now();
    while other.session(&[1; 32]).await.unwrap().unwrap().groups != want {
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "a group change not seen by the other store"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        a.remove_group(&name("ann"), &g("ab"))
            .await
            .unwrap()
            .unwrap()
            .changed
    );
    assert_eq!(
        a.session(&[1; 32]).await.unwrap().unwrap().groups,
        ["a-b", "a_b"]
    );
    assert!(
        a.remove_group(&name("nobody"), &g("ab"))
            .await
            .unwrap()
            .is_none()
    );
}

fn event(at: i64, event: &'static str, outcome: &'static str, user: &str) -> AuditEvent {
    AuditEvent {
        at_ms: at,
        last_ms: at,
        count: 1,
        event,
        outcome,
        username: Some(user.into()),
        user_id: Some(7),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("x".repeat(1000)),
        detail: None,
    }
}

async fn audit_writes_bumps_filters_and_purges(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ids = s
        .write_audit(
            &[
                event(1_000, "sign_in", "ok", "alice"),
                event(2_000, "sign_in", "locked", "alice"),
                event(3_000, "sign_up", "ok", "bob"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    // Two bumps of one episode in one batch both count.
    s.write_audit(&[], &[(ids[1], 3, 2_500), (ids[1], 1, 2_400)])
        .await
        .unwrap();
    let all = s
        .audit_events(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert_eq!(all[1].count, 5);
    assert_eq!(all[1].last_ms, 2_500);
    assert_eq!(all[0].user_agent.as_ref().unwrap().len(), 256);
    assert_eq!(all[2].username.as_deref(), Some("bob"));
    let alice = s
        .audit_events(&AuditFilter {
            username: Some("alice".into()),
            since_ms: Some(1_500),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0].outcome, "locked");
    let sign_ups = s
        .audit_events(&AuditFilter {
            event: Some("sign_up".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sign_ups.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[2]]);
    let newest = s
        .audit_events(&AuditFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
        [2_000, 3_000]
    );
    assert_eq!(s.recent_sign_ins(7, 5).await.unwrap().len(), 1);
    assert_eq!(s.failed_sign_ins_since(7, 1_000).await.unwrap(), 5);
    assert_eq!(s.failed_sign_ins_since(7, 2_600).await.unwrap(), 0);
    // A big batch comes back with its ids in the batch's order.
    let batch: Vec<_> = (0..200)
        .map(|i| event(10_000 + i, "sign_in", "failed", &format!("u{i}")))
        .collect();
    let more = s.write_audit(&batch, &[(ids[0], 1, 1_000)]).await.unwrap();
    let back = s
        .audit_events(&AuditFilter {
            since_ms: Some(10_000),
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(back.iter().map(|r| r.id).collect::<Vec<_>>(), more);
    assert!(
        back.iter()
            .zip(&batch)
            .all(|(r, e)| r.username == e.username)
    );
    assert_eq!(s.purge_audit(2_600).await.unwrap(), 2);
    assert_eq!(s.purge_audit(2_600).await.unwrap(), 0);
}
