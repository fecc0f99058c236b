//! The store's contract for the mail outbox, one-time link tokens and profile changes, on both
//! backends (`both_backends!`), with races between two stores on one database as two
//! instances would have them: every message claimed once, every link consumed once, one
//! account per address, the outbox's bounds exact.

use crate::both_backends;
use crate::domain::{Email, FullName, Username};
use crate::security::token::Purpose;
use crate::store::profile::EmailChange;
use crate::store::testing::{Backend, HASH, TestDb, pg_client};
use crate::store::tokens::{Confirmed, NewToken, TokenIssued, TokenMail, VerifyLink};
use crate::store::{Enqueued, NewMail, OutboxLimits, Store, Taken};

both_backends!(
    outbox_claims_are_exclusive_across_stores,
    a_lapsed_lease_is_claimed_again_by_another_store,
    the_outbox_and_each_recipient_are_bounded,
    outbox_bounds_hold_under_concurrent_enqueues,
    retry_delete_and_expiry,
    reset_tokens_are_single_use_superseded_expiring_and_killed_by_password_changes,
    a_reset_link_consumed_by_two_stores_at_once_works_once,
    a_reset_ends_sessions_kills_reset_links_and_queues_its_notice,
    logins_match_a_username_or_an_email_ignoring_ascii_case,
    a_token_goes_in_with_its_mail_within_the_hourly_budget_or_not_at_all,
    concurrent_token_requests_keep_one_live_link_within_the_budget,
    sign_up_with_verification_stores_user_link_and_mail_together,
    concurrent_sign_ups_of_one_name_or_address_give_one_user,
    confirming_a_link_moves_the_address_once,
    email_uniqueness_ignores_ascii_case,
    two_accounts_confirming_one_address_at_once_get_it_once,
    full_name_unverified_email_and_lapsed_pending_addresses,
);

const HASH2: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$b3RoZXJvdGhlcm90aGVyMQ";

const WIDE: OutboxLimits = OutboxLimits {
    max_queued: 1_000,
    per_recipient_per_hour: 1_000,
};

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn email(s: &str) -> Email {
    Email::parse_optional(s).unwrap().unwrap()
}

fn mail(n: u32, to: &str, now: i64) -> NewMail {
    NewMail {
        message_id: format!("<{n}@x.org>"),
        recipient: to.into(),
        kind: "test",
        sealed_body: vec![n as u8; 40],
        created_ms: now,
        expires_ms: now + 3_600_000,
    }
}

fn reset_token(hash: u8, user_id: i64, now: i64) -> NewToken {
    NewToken {
        hash: [hash; 32],
        user_id,
        purpose: Purpose::Reset,
        email: None,
        now_ms: now,
        expires_ms: now + 3_600_000,
    }
}

fn verify_link(hash: u8, n: u32, to: &str, now: i64) -> VerifyLink {
    VerifyLink {
        hash: [hash; 32],
        expires_ms: now + 86_400_000,
        mail: mail(n, to, now),
        limits: WIDE,
    }
}

fn change(user_id: i64, to: &str, verify: Option<VerifyLink>, now: i64) -> EmailChange {
    EmailChange {
        user_id,
        email: email(to),
        verify,
        notice: None,
        now_ms: now,
    }
}

/// A user, through the store on both backends. `create_user_verifying` without a link is what
/// `create_user` is on SQLite; it is used here because `PgStore::create_user` is built by
/// another part of issue 14 (switch to `create_user` once both are merged).
async fn user(s: &Store, username: &str, address: Option<&str>) -> i64 {
    let address = address.map(email);
    s.create_user_verifying(&name(username), address.as_ref(), None, HASH, 1_000, None)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Plain SQL on the test database, beneath the store: to set up sessions and look at rows
/// whose store methods other parts of issue 14 build. Statements are written to run on both.
enum Raw {
    Sqlite(rusqlite::Connection),
    Pg(tokio_postgres::Client),
}

impl Raw {
    async fn open(db: &TestDb) -> Raw {
        match db.backend {
            Backend::Sqlite => Raw::Sqlite(rusqlite::Connection::open(&db.location).unwrap()),
            Backend::Postgres => Raw::Pg(pg_client(db.url()).await),
        }
    }

    async fn exec(&self, sql: &str) -> u64 {
        match self {
            Raw::Sqlite(c) => c.execute(sql, []).unwrap() as u64,
            Raw::Pg(c) => c.execute(sql, &[]).await.unwrap(),
        }
    }

    async fn int(&self, sql: &str) -> Option<i64> {
        match self {
            Raw::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Raw::Pg(c) => c.query_one(sql, &[]).await.unwrap().get(0),
        }
    }

    async fn text(&self, sql: &str) -> Option<String> {
        match self {
            Raw::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Raw::Pg(c) => c.query_one(sql, &[]).await.unwrap().get(0),
        }
    }

    /// A session of `user_id` whose token hash is `[token; 32]`.
    async fn add_session(&self, user_id: i64, token: u8, now: i64) {
        let hex = hex::encode([token; 32]);
        let blob = match self {
            Raw::Sqlite(_) => format!("X'{hex}'"),
            Raw::Pg(_) => format!("'\\x{hex}'::bytea"),
        };
        self.exec(&format!(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
             VALUES ({blob}, {user_id}, {now}, {now}, {})",
            now + 100_000_000
        ))
        .await;
    }

    async fn sessions_of(&self, user_id: i64) -> i64 {
        self.int(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = {user_id}"
        ))
        .await
        .unwrap()
    }
}

/// Waits until a PostgreSQL store's session cache is trusted (its listener heard the
/// database), so that a test can tell a cached answer from a fresh one.
async fn cache_trusted(s: &Store) {
    if let Store::Postgres(p) = s {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !p.inner.cache.is_trusted() {
            assert!(
                std::time::Instant::now() < deadline,
                "the listener never spoke"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

// ---- the outbox ----

async fn outbox_claims_are_exclusive_across_stores(b: Backend) {
    let db = TestDb::new(b);
    let stores = [db.store(), db.store()];
    const N: u32 = 100;
    for round in 0..4 {
        for n in round * N..(round + 1) * N {
            let queued = stores[0]
                .enqueue_mail(mail(n, &format!("r{n}@x.org"), 0), 0, WIDE)
                .await
                .unwrap();
            assert_eq!(queued, Enqueued::Queued);
        }
        // Two senders per store, each claiming small batches until nothing is left.
        let claimers: Vec<_> = (0..4)
            .map(|i| {
                let s = stores[i % 2].clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let batch = s.claim_mail(10, 60_000, 4).await.unwrap();
                        if batch.is_empty() {
                            return got;
                        }
                        got.extend(batch.iter().map(|m| (m.id, m.attempts)));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for c in claimers {
            all.extend(c.await.unwrap());
        }
        assert!(
            all.iter().all(|m| m.1 == 1),
            "round {round}: one attempt each"
        );
        let mut ids: Vec<i64> = all.iter().map(|m| m.0).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            all.len(),
            ids.len(),
            "round {round}: a message claimed twice"
        );
        assert_eq!(
            ids.len(),
            N as usize,
            "round {round}: every message claimed"
        );
        for id in ids {
            assert!(stores[1].delete_mail(id).await.unwrap());
        }
    }
}

async fn a_lapsed_lease_is_claimed_again_by_another_store(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    s1.enqueue_mail(mail(1, "a@x.org", 0), 0, WIDE)
        .await
        .unwrap();
    s1.enqueue_mail(mail(2, "b@x.org", 5), 5, WIDE)
        .await
        .unwrap();
    let first = s1.claim_mail(10, 1_000, 10).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].message_id, "<1@x.org>");
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].sealed_body, vec![1u8; 40]);
    assert!(
        s2.claim_mail(500, 1_000, 10).await.unwrap().is_empty(),
        "claimed by the other store"
    );
    assert_eq!(s2.next_mail_due(500).await.unwrap(), Some(1_010));
    let again = s2.claim_mail(1_010, 1_000, 1).await.unwrap();
    assert_eq!(again.len(), 1, "the limit holds");
    assert_eq!(again[0].attempts, 2);
    // A sender starting: on SQLite every claim is dead; on PostgreSQL another instance may be
    // sending, so nothing is released and the leases run on.
    let released = s1.release_mail_claims().await.unwrap();
    let claimable = s1.claim_mail(1_020, 1_000, 10).await.unwrap().len();
    match b {
        Backend::Sqlite => assert_eq!((released, claimable), (2, 2)),
        // The first message's lease (until 2_010) holds; the second's lapsed at 1_010.
        Backend::Postgres => assert_eq!((released, claimable), (0, 1)),
    }
}

async fn the_outbox_and_each_recipient_are_bounded(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let limits = OutboxLimits {
        max_queued: 3,
        per_recipient_per_hour: 2,
    };
    let q = |n, to: &'static str, now| {
        let s = s.clone();
        async move { s.enqueue_mail(mail(n, to, now), now, limits).await.unwrap() }
    };
    assert_eq!(q(1, "a@x.org", 0).await, Enqueued::Queued);
    assert_eq!(q(2, "A@X.org", 10).await, Enqueued::Queued);
    assert_eq!(
        q(3, "a@x.org", 20).await,
        Enqueued::DroppedRate,
        "case ignored"
    );
    assert_eq!(q(4, "b@x.org", 30).await, Enqueued::Queued);
    assert_eq!(q(5, "c@x.org", 40).await, Enqueued::DroppedFull);
    assert_eq!(s.outbox_depth().await.unwrap(), 3);
    for m in s.claim_mail(50, 1_000, 10).await.unwrap() {
        assert!(s.delete_mail(m.id).await.unwrap());
    }
    assert_eq!(
        q(6, "a@x.org", 60).await,
        Enqueued::DroppedRate,
        "the hour counts sent mail"
    );
    let hour = crate::store::sqlite::outbox::RATE_WINDOW_MS;
    s.purge_outbox(hour + 20).await.unwrap();
    assert_eq!(q(7, "a@x.org", hour + 20).await, Enqueued::Queued);
}

async fn outbox_bounds_hold_under_concurrent_enqueues(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    let one_inbox = OutboxLimits {
        max_queued: 1_000,
        per_recipient_per_hour: 5,
    };
    let flood = |s: Store, from: u32, limits: OutboxLimits, to: fn(u32) -> String| async move {
        let mut queued = 0;
        for n in from..from + 20 {
            if s.enqueue_mail(mail(n, &to(n), 0), 0, limits).await.unwrap() == Enqueued::Queued {
                queued += 1;
            }
        }
        queued
    };
    fn same(_: u32) -> String {
        "same@x.org".to_owned()
    }
    let (x, y) = tokio::join!(
        flood(s1.clone(), 0, one_inbox, same),
        flood(s2.clone(), 100, one_inbox, same)
    );
    assert_eq!(x + y, 5, "the recipient's hourly bound is exact");
    let small = OutboxLimits {
        max_queued: 15,
        per_recipient_per_hour: 1_000,
    };
    fn many(n: u32) -> String {
        format!("r{n}@x.org")
    }
    let (x, y) = tokio::join!(
        flood(s1.clone(), 200, small, many),
        flood(s2.clone(), 300, small, many)
    );
    assert_eq!(x + y, 10, "the outbox's bound is exact");
    assert_eq!(s1.outbox_depth().await.unwrap(), 15);
}

async fn retry_delete_and_expiry(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    s.enqueue_mail(mail(1, "a@x.org", 0), 0, WIDE)
        .await
        .unwrap();
    let m = s.claim_mail(0, 60_000, 10).await.unwrap().remove(0);
    assert!(s.retry_mail_at(m.id, 5_000).await.unwrap());
    assert!(
        s.claim_mail(4_999, 60_000, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(s.next_mail_due(0).await.unwrap(), Some(5_000));
    let m = s.claim_mail(5_000, 60_000, 10).await.unwrap().remove(0);
    assert_eq!(m.attempts, 2, "the Message-ID and row stay, attempts count");
    assert_eq!(m.message_id, "<1@x.org>");
    assert!(s.delete_mail(m.id).await.unwrap());
    assert!(!s.delete_mail(m.id).await.unwrap());
    assert!(!s.retry_mail_at(m.id, 1).await.unwrap());
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
    assert_eq!(s.next_mail_due(0).await.unwrap(), None);

    s.enqueue_mail(mail(2, "a@x.org", 0), 0, WIDE)
        .await
        .unwrap();
    assert!(
        s.claim_mail(3_600_000, 1, 10).await.unwrap().is_empty(),
        "expired: never sent"
    );
    assert_eq!(s.purge_outbox(3_600_000).await.unwrap(), 1);
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
}

/// PostgreSQL's in-transaction enqueue goes with its caller's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_commits_with_the_callers_transaction_or_not_at_all() {
    let db = TestDb::new(Backend::Postgres);
    let Store::Postgres(p) = db.store() else {
        unreachable!()
    };
    {
        let mut client = p.client().await.unwrap();
        let tx = client.transaction().await.unwrap();
        let queued = super::outbox::enqueue(&tx, &mail(1, "a@x.org", 0), 0, &WIDE)
            .await
            .unwrap();
        assert_eq!(queued, Enqueued::Queued);
        tx.rollback().await.unwrap();
    }
    assert_eq!(p.outbox_depth().await.unwrap(), 0);
    let mut client = p.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    super::outbox::enqueue(&tx, &mail(1, "a@x.org", 0), 0, &WIDE)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(p.outbox_depth().await.unwrap(), 1);
}

// ---- tokens ----

async fn reset_tokens_are_single_use_superseded_expiring_and_killed_by_password_changes(
    b: Backend,
) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let u = user(&s, "rita", None).await;
    s.create_token(reset_token(1, u, 2_000)).await.unwrap();
    let found = s
        .find_token(&[1; 32], Purpose::Reset, 2_001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.user_id, found.username.as_str()), (u, "rita"));
    assert_eq!(found.expires_ms, 2_000 + 3_600_000);
    let none = |hash: u8, purpose, now| {
        let s = s.clone();
        async move {
            s.find_token(&[hash; 32], purpose, now)
                .await
                .unwrap()
                .is_none()
        }
    };
    // Another purpose, an expired time, an unknown hash: nothing.
    assert!(none(1, Purpose::Verify, 2_001).await);
    assert!(none(1, Purpose::Reset, 2_000 + 3_600_000).await);
    assert!(none(9, Purpose::Reset, 2_001).await);
    // A newer link supersedes the older one.
    s.create_token(reset_token(2, u, 3_000)).await.unwrap();
    assert!(none(1, Purpose::Reset, 3_001).await);
    assert!(!none(2, Purpose::Reset, 3_001).await);
    // Consuming sets the hash, ends the sessions, forgives the lock; a second use is nothing.
    raw.add_session(u, 7, 3_100).await;
    let done = s
        .reset_password_with_token([2; 32], HASH2.into(), 4_000, None)
        .await
        .unwrap();
    assert_eq!(done.map(|t| t.user_id), Some(u));
    assert!(
        s.reset_password_with_token([2; 32], HASH.into(), 4_001, None)
            .await
            .unwrap()
            .is_none()
    );
    let row = |col: &str| format!("SELECT {col} FROM users WHERE id = {u}");
    assert_eq!(
        raw.text(&row("password_hash")).await.as_deref(),
        Some(HASH2)
    );
    assert_eq!(raw.int(&row("unlocked_at")).await, Some(4_000));
    assert!(raw.int(&row("password_changed_at")).await.unwrap() >= 4_000);
    assert!(s.session(&[7; 32]).await.unwrap().is_none());
    assert_eq!(raw.sessions_of(u).await, 0);
    // A password change by another route kills a live link (the schema's trigger).
    s.create_token(reset_token(3, u, 5_000)).await.unwrap();
    raw.exec(&format!(
        "UPDATE users SET password_changed_at = password_changed_at + 1 WHERE id = {u}"
    ))
    .await;
    assert!(none(3, Purpose::Reset, 5_600).await);
    // A disabled user's link opens nothing.
    s.create_token(reset_token(4, u, 6_000)).await.unwrap();
    raw.exec(&format!("UPDATE users SET active = FALSE WHERE id = {u}"))
        .await;
    assert!(none(4, Purpose::Reset, 6_200).await);
    assert!(
        s.reset_password_with_token([4; 32], HASH2.into(), 6_300, None)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_reset_link_consumed_by_two_stores_at_once_works_once(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    let raw = Raw::open(&db).await;
    let u = user(&s1, "rita", Some("rita@x.org")).await;
    for round in 0..10u8 {
        let now = 10_000 * (round as i64 + 1);
        s1.create_token(reset_token(round, u, now)).await.unwrap();
        let notice = || Some((mail(round as u32 * 2, "rita@x.org", now), WIDE));
        let (x, y) = tokio::join!(
            s1.reset_password_with_token([round; 32], HASH.into(), now + 1, notice()),
            s2.reset_password_with_token([round; 32], HASH2.into(), now + 1, {
                let mut m = notice().unwrap();
                m.0.message_id = format!("<{round}b@x.org>");
                Some(m)
            })
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(
            x.is_some() as u8 + y.is_some() as u8,
            1,
            "round {round}: {x:?} {y:?}"
        );
        let expected = if x.is_some() { HASH } else { HASH2 };
        let stored = raw
            .text(&format!("SELECT password_hash FROM users WHERE id = {u}"))
            .await;
        assert_eq!(stored.as_deref(), Some(expected), "the winner's password");
        assert_eq!(
            s1.outbox_depth().await.unwrap(),
            round as i64 + 1,
            "one notice per reset"
        );
    }
}

async fn a_reset_ends_sessions_kills_reset_links_and_queues_its_notice(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let u = user(&s, "rita", Some("rita@x.org")).await;
    let other = user(&s, "omar", None).await;
    raw.add_session(u, 1, 1_000).await;
    raw.add_session(u, 2, 1_000).await;
    raw.add_session(other, 3, 1_000).await;
    s.create_token(reset_token(10, u, 2_000)).await.unwrap();
    // A second live reset link (only a direct insert can make one: issuing supersedes).
    let hex = hex::encode([11u8; 32]);
    let blob = match b {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    };
    raw.exec(&format!(
        "INSERT INTO tokens (hash, user_id, purpose, created_at, expires_at)
         VALUES ({blob}, {u}, 'reset', 2000, 9999999)"
    ))
    .await;
    s.create_token(NewToken {
        hash: [12; 32],
        user_id: u,
        purpose: Purpose::Verify,
        email: Some("rita@x.org".into()),
        now_ms: 2_000,
        expires_ms: 9_999_999,
    })
    .await
    .unwrap();
    assert!(
        s.find_token(&[11; 32], Purpose::Reset, 2_500)
            .await
            .unwrap()
            .is_some()
    );
    cache_trusted(&s).await;
    assert!(s.session(&[1; 32]).await.unwrap().is_some());
    assert!(s.session(&[1; 32]).await.unwrap().is_some(), "cached");

    let notice = Some((mail(1, "rita@x.org", 3_000), WIDE));
    let done = s
        .reset_password_with_token([10; 32], HASH2.into(), 3_000, notice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.account_email.as_deref(), Some("rita@x.org"));
    // At once on this instance, cache or not.
    assert!(s.session(&[1; 32]).await.unwrap().is_none());
    assert!(s.session(&[2; 32]).await.unwrap().is_none());
    assert_eq!(raw.sessions_of(u).await, 0);
    assert!(s.session(&[3; 32]).await.unwrap().is_some(), "not his");
    assert!(
        s.find_token(&[11; 32], Purpose::Reset, 3_001)
            .await
            .unwrap()
            .is_none(),
        "every reset link dies with the password"
    );
    assert!(
        s.find_token(&[12; 32], Purpose::Verify, 3_001)
            .await
            .unwrap()
            .is_some(),
        "a verification link is no reset link"
    );
    let notice = s.claim_mail(3_000, 1_000, 10).await.unwrap();
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0].recipient, "rita@x.org");
}

async fn logins_match_a_username_or_an_email_ignoring_ascii_case(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let nina = user(&s, "nina", Some("Nina@Example.org")).await;
    user(&s, "omar", None).await;
    for login in ["nina", "NINA", "nina@example.org", "NINA@EXAMPLE.ORG"] {
        let m = s.find_login(login.into()).await.unwrap().unwrap();
        assert_eq!((m.user_id, m.username.as_str()), (nina, "nina"));
        assert_eq!(m.email.as_deref(), Some("Nina@Example.org"));
        assert!(!m.email_verified);
    }
    let omar = s.find_login("Omar".into()).await.unwrap().unwrap();
    assert_eq!((omar.email, omar.email_verified), (None, false));
    assert!(s.find_login("nobody".into()).await.unwrap().is_none());
    assert!(
        s.find_login("nina@example.com".into())
            .await
            .unwrap()
            .is_none()
    );
    raw.exec(&format!(
        "UPDATE users SET email_verified_at = 5 WHERE id = {nina}"
    ))
    .await;
    assert!(
        s.find_login("nina".into())
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    raw.exec(&format!(
        "UPDATE users SET active = FALSE WHERE id = {nina}"
    ))
    .await;
    assert!(
        s.find_login("nina".into()).await.unwrap().is_none(),
        "a disabled user matches nothing"
    );
}

fn token_mail(n: u8, per_recipient: i64, per_hour: Option<i64>) -> TokenMail {
    TokenMail {
        mail: NewMail {
            message_id: format!("<{n}@test>"),
            recipient: "pia@example.org".into(),
            kind: "password_reset",
            sealed_body: vec![n; 8],
            created_ms: 0,
            expires_ms: i64::MAX,
        },
        limits: OutboxLimits {
            max_queued: 100,
            per_recipient_per_hour: per_recipient,
        },
        per_hour,
    }
}

async fn a_token_goes_in_with_its_mail_within_the_hourly_budget_or_not_at_all(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let u = user(&s, "pia", None).await;
    let live = |hash: u8| {
        let s = s.clone();
        async move {
            s.find_token(&[hash; 32], Purpose::Reset, 10_000)
                .await
                .unwrap()
                .is_some()
        }
    };
    let issue = |hash: u8, now: i64, m: TokenMail| {
        let s = s.clone();
        async move {
            s.create_token_with_mail(reset_token(hash, u, now), m)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        issue(1, 1_000, token_mail(1, 10, Some(2))).await,
        TokenIssued::Issued(Enqueued::Queued)
    );
    // The outbox drops the mail (its per-recipient bound): no token, the mailed link lives.
    assert_eq!(
        issue(2, 2_000, token_mail(2, 1, Some(2))).await,
        TokenIssued::Issued(Enqueued::DroppedRate)
    );
    assert!(live(1).await && !live(2).await);
    assert_eq!(
        issue(3, 3_000, token_mail(3, 10, Some(2))).await,
        TokenIssued::Issued(Enqueued::Queued)
    );
    // Past the account's budget of 2 an hour: nothing written.
    assert_eq!(
        issue(4, 4_000, token_mail(4, 10, Some(2))).await,
        TokenIssued::OverBudget
    );
    assert!(!live(1).await && live(3).await && !live(4).await);
    assert_eq!(s.outbox_depth().await.unwrap(), 2);
}

async fn concurrent_token_requests_keep_one_live_link_within_the_budget(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    let u = user(&s1, "pia", None).await;
    for round in 0..10u8 {
        let now = 10_000_000 * (round as i64 + 1);
        let (h1, h2) = (2 * round + 1, 2 * round + 2);
        let (x, y) = tokio::join!(
            s1.create_token_with_mail(reset_token(h1, u, now), token_mail(h1, 100, Some(1))),
            s2.create_token_with_mail(reset_token(h2, u, now), token_mail(h2, 100, Some(1)))
        );
        let mut outcomes = [x.unwrap(), y.unwrap()];
        outcomes.sort_by_key(|o| *o == TokenIssued::OverBudget);
        assert_eq!(
            outcomes,
            [
                TokenIssued::Issued(Enqueued::Queued),
                TokenIssued::OverBudget
            ],
            "round {round}: a budget of one an hour"
        );
        // Without a budget, two requests at once still leave one live link.
        let (x, y) = tokio::join!(
            s1.create_token(reset_token(h1 + 100, u, now + 1)),
            s2.create_token(reset_token(h2 + 100, u, now + 1))
        );
        x.unwrap();
        y.unwrap();
        let mut live = 0;
        for h in [h1, h2, h1 + 100, h2 + 100] {
            if s1
                .find_token(&[h; 32], Purpose::Reset, now + 2)
                .await
                .unwrap()
                .is_some()
            {
                live += 1;
            }
        }
        assert_eq!(live, 1, "round {round}: one live reset link per user");
    }
}

// ---- sign-up, confirmation, profile ----

async fn sign_up_with_verification_stores_user_link_and_mail_together(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let ann = s
        .create_user_verifying(
            &name("ann"),
            Some(&email("Ann@Example.com")),
            FullName::parse_optional("Ann A.").unwrap().as_ref(),
            HASH,
            1_000,
            Some(verify_link(1, 1, "Ann@Example.com", 1_000)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ann.username.as_str(), ann.email.as_deref()),
        ("ann", Some("Ann@Example.com"))
    );
    assert_eq!(ann.full_name.as_deref(), Some("Ann A."));
    let link = s
        .find_token(&[1; 32], Purpose::Verify, 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (link.user_id, link.email.as_deref()),
        (ann.id, Some("Ann@Example.com"))
    );
    assert!(!link.account_email_verified);
    assert_eq!(s.outbox_depth().await.unwrap(), 1);
    if b == Backend::Postgres {
        assert_eq!(
            raw.text(&format!(
                "SELECT email_key FROM users WHERE id = {}",
                ann.id
            ))
            .await
            .as_deref(),
            Some("ann@example.com")
        );
    }

    let create = |n: &str, e: Option<&str>| {
        let (s, n, e) = (s.clone(), name(n), e.map(email));
        async move {
            s.create_user_verifying(
                &n,
                e.as_ref(),
                None,
                HASH,
                2_000,
                e.as_ref().map(|e| verify_link(9, 9, e.as_str(), 2_000)),
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(create("ANN", None).await.unwrap_err(), Taken::Username);
    assert_eq!(
        create("bob", Some("ANN@example.COM")).await.unwrap_err(),
        Taken::Email
    );
    assert_eq!(
        create("ann", Some("ANN@example.COM")).await.unwrap_err(),
        Taken::Username,
        "the username is named first"
    );
    // A deleted user's name is retired; the address is free again.
    raw.exec(&format!("DELETE FROM users WHERE id = {}", ann.id))
        .await;
    assert_eq!(create("ann", None).await.unwrap_err(), Taken::Username);
    assert_eq!(s.outbox_depth().await.unwrap(), 1, "refusals queue nothing");
    assert!(
        s.find_token(&[9; 32], Purpose::Verify, 2_001)
            .await
            .unwrap()
            .is_none()
    );
    let bob = create("bob", Some("ann@example.com")).await.unwrap();
    assert_ne!(bob.id, ann.id);
    assert_eq!(s.outbox_depth().await.unwrap(), 2);
    // Two users without an address are fine.
    create("carol", None).await.unwrap();
    create("dave", None).await.unwrap();
}

async fn concurrent_sign_ups_of_one_name_or_address_give_one_user(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    for i in 0..10 {
        let (n1, n2) = (name(&format!("racer{i}")), name(&format!("racer{i}")));
        let (x, y) = tokio::join!(
            s1.create_user_verifying(&n1, None, None, HASH, 1, None),
            s2.create_user_verifying(&n2, None, None, HASH, 1, None)
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        let created = outcomes.iter().filter(|o| o.is_ok()).count();
        let taken = outcomes
            .iter()
            .filter(|o| matches!(o, Err(Taken::Username)))
            .count();
        assert_eq!((created, taken), (1, 1), "name round {i}: {outcomes:?}");

        let (e1, e2) = (
            email(&format!("Racer{i}@x.org")),
            email(&format!("racer{i}@X.ORG")),
        );
        let (l, r) = (name(&format!("left{i}")), name(&format!("right{i}")));
        let (x, y) = tokio::join!(
            s1.create_user_verifying(&l, Some(&e1), None, HASH, 1, None),
            s2.create_user_verifying(&r, Some(&e2), None, HASH, 1, None)
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        let created = outcomes.iter().filter(|o| o.is_ok()).count();
        let taken = outcomes
            .iter()
            .filter(|o| matches!(o, Err(Taken::Email)))
            .count();
        assert_eq!((created, taken), (1, 1), "address round {i}: {outcomes:?}");
    }
}

async fn confirming_a_link_moves_the_address_once(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let u = user(&s, "vera", Some("old@x.org")).await;
    raw.add_session(u, 5, 1_000).await;
    cache_trusted(&s).await;
    assert_eq!(
        s.session(&[5; 32])
            .await
            .unwrap()
            .unwrap()
            .user
            .email
            .as_deref(),
        Some("old@x.org")
    );
    let notice = (mail(2, "old@x.org", 2_000), WIDE);
    let mut ch = change(
        u,
        "New@X.org",
        Some(verify_link(1, 1, "New@X.org", 2_000)),
        2_000,
    );
    ch.notice = Some(notice);
    s.request_email_change(ch).await.unwrap().unwrap();
    assert_eq!(
        s.outbox_depth().await.unwrap(),
        2,
        "the link and the notice"
    );
    let row = |col: &str| format!("SELECT {col} FROM users WHERE id = {u}");
    assert_eq!(
        raw.text(&row("pending_email")).await.as_deref(),
        Some("New@X.org")
    );
    assert_eq!(
        raw.text(&row("email")).await.as_deref(),
        Some("old@x.org"),
        "the old address stays until confirmed"
    );
    assert_eq!(
        s.confirm_email([1; 32], 3_000).await.unwrap(),
        Some(Confirmed::Email {
            user_id: u,
            username: "vera".into(),
            email: "New@X.org".into()
        })
    );
    assert_eq!(raw.text(&row("email")).await.as_deref(), Some("New@X.org"));
    assert_eq!(raw.text(&row("pending_email")).await, None);
    assert_eq!(raw.int(&row("email_verified_at")).await, Some(3_000));
    if b == Backend::Postgres {
        assert_eq!(
            raw.text(&row("email_key")).await.as_deref(),
            Some("new@x.org")
        );
    }
    let rec = s.session(&[5; 32]).await.unwrap().unwrap();
    assert_eq!(rec.user.email.as_deref(), Some("New@X.org"), "at once");
    assert!(rec.email_verified);
    assert_eq!(s.confirm_email([1; 32], 3_001).await.unwrap(), None, "used");

    // A link for an address the user has since moved away from opens nothing.
    s.request_email_change(change(
        u,
        "a@x.org",
        Some(verify_link(2, 3, "a@x.org", 4_000)),
        4_000,
    ))
    .await
    .unwrap()
    .unwrap();
    s.request_email_change(change(u, "b@x.org", None, 4_500))
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.find_token(&[2; 32], Purpose::Verify, 5_000)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.confirm_email([2; 32], 5_000).await.unwrap(), None);
    assert_eq!(raw.text(&row("email")).await.as_deref(), Some("New@X.org"));
    assert_eq!(
        raw.text(&row("pending_email")).await.as_deref(),
        Some("b@x.org")
    );
}

async fn email_uniqueness_ignores_ascii_case(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let ann = user(&s, "ann", Some("Ann@Example.com")).await;
    let bob = user(&s, "bob", Some("bob@x.org")).await;
    assert_eq!(
        s.request_email_change(change(bob, "ANN@example.COM", None, 2_000))
            .await
            .unwrap(),
        Err(Taken::Email)
    );
    assert_eq!(
        s.set_email_unverified(bob, email("ann@EXAMPLE.com"), 2_000)
            .await
            .unwrap(),
        Err(Taken::Email)
    );
    // One's own address in another case is no conflict.
    s.set_email_unverified(ann, email("ANN@example.com"), 2_100)
        .await
        .unwrap()
        .unwrap();
    // Bob asks for an address that is free, then Ann takes it (another case) first.
    s.request_email_change(change(
        bob,
        "shared@x.org",
        Some(verify_link(1, 1, "shared@x.org", 3_000)),
        3_000,
    ))
    .await
    .unwrap()
    .unwrap();
    s.set_email_unverified(ann, email("SHARED@x.org"), 3_500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.confirm_email([1; 32], 4_000).await.unwrap(),
        Some(Confirmed::Taken)
    );
    assert_eq!(
        raw.text(&format!("SELECT email FROM users WHERE id = {bob}"))
            .await
            .as_deref(),
        Some("bob@x.org"),
        "nothing changed"
    );
    assert_eq!(
        s.confirm_email([1; 32], 4_001).await.unwrap(),
        None,
        "the link is used up"
    );
}

async fn two_accounts_confirming_one_address_at_once_get_it_once(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    let raw = Raw::open(&db).await;
    let a = user(&s1, "ann", None).await;
    let c = user(&s1, "cid", None).await;
    for round in 0..8u8 {
        let address = format!("r{round}@x.org");
        let upper = address.to_ascii_uppercase();
        let now = 1_000 * (round as i64 + 2);
        let (ha, hc) = (2 * round + 1, 2 * round + 2);
        s1.request_email_change(change(
            a,
            &address,
            Some(verify_link(ha, ha as u32, &address, now)),
            now,
        ))
        .await
        .unwrap()
        .unwrap();
        s1.request_email_change(change(
            c,
            &upper,
            Some(verify_link(hc, hc as u32, &upper, now)),
            now,
        ))
        .await
        .unwrap()
        .unwrap();
        let (x, y) = tokio::join!(
            s1.confirm_email([ha; 32], now + 1),
            s2.confirm_email([hc; 32], now + 1)
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        let moved = outcomes
            .iter()
            .filter(|o| matches!(o, Some(Confirmed::Email { .. })))
            .count();
        let taken = outcomes
            .iter()
            .filter(|o| **o == Some(Confirmed::Taken))
            .count();
        assert_eq!((moved, taken), (1, 1), "round {round}: {outcomes:?}");
        let holders = raw
            .int(&format!(
                "SELECT count(*) FROM users WHERE lower(email) = '{address}'"
            ))
            .await;
        assert_eq!(holders, Some(1));
    }
}

async fn full_name_unverified_email_and_lapsed_pending_addresses(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let raw = Raw::open(&db).await;
    let u = user(&s, "fay", Some("fay@x.org")).await;
    let row = |col: &str| format!("SELECT {col} FROM users WHERE id = {u}");
    raw.add_session(u, 4, 1_000).await;
    cache_trusted(&s).await;
    assert_eq!(
        s.session(&[4; 32]).await.unwrap().unwrap().user.full_name,
        None
    );
    let fay = FullName::parse_optional("Fay F.").unwrap();
    assert!(s.set_full_name(u, fay.clone(), 2_000).await.unwrap());
    assert_eq!(
        s.session(&[4; 32])
            .await
            .unwrap()
            .unwrap()
            .user
            .full_name
            .as_deref(),
        Some("Fay F."),
        "at once"
    );
    assert_eq!(raw.int(&row("updated_at")).await, Some(2_000));
    assert!(s.set_full_name(u, None, 2_100).await.unwrap());
    assert_eq!(raw.text(&row("full_name")).await, None);
    assert!(
        !s.set_full_name(u + 100, fay, 2_200).await.unwrap(),
        "no such user"
    );

    // A pending change and its link, then an address set at once: both forgotten.
    raw.exec(&format!(
        "UPDATE users SET email_verified_at = 1 WHERE id = {u}"
    ))
    .await;
    s.request_email_change(change(
        u,
        "p@x.org",
        Some(verify_link(1, 1, "p@x.org", 3_000)),
        3_000,
    ))
    .await
    .unwrap()
    .unwrap();
    s.set_email_unverified(u, email("Now@x.org"), 3_500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.text(&row("email")).await.as_deref(), Some("Now@x.org"));
    assert_eq!(raw.int(&row("email_verified_at")).await, None);
    assert_eq!(raw.text(&row("pending_email")).await, None);
    if b == Backend::Postgres {
        assert_eq!(
            raw.text(&row("email_key")).await.as_deref(),
            Some("now@x.org")
        );
    }
    assert!(
        s.find_token(&[1; 32], Purpose::Verify, 3_600)
            .await
            .unwrap()
            .is_none(),
        "the pending address's link is dead"
    );
    assert!(!s.session(&[4; 32]).await.unwrap().unwrap().email_verified);

    // Pending addresses lapse after their time to live, not before.
    let other = user(&s, "gus", None).await;
    s.request_email_change(change(u, "q@x.org", None, 10_000))
        .await
        .unwrap()
        .unwrap();
    s.request_email_change(change(other, "r@x.org", None, 20_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.lapse_pending_emails(29_999, 20_000).await.unwrap(), 0);
    assert_eq!(s.lapse_pending_emails(30_000, 20_000).await.unwrap(), 1);
    assert_eq!(raw.text(&row("pending_email")).await, None);
    assert_eq!(s.lapse_pending_emails(40_000, 20_000).await.unwrap(), 1);
    assert_eq!(s.lapse_pending_emails(40_000, 20_000).await.unwrap(), 0);
}
