//! The two-step storage contract on both backends: set-up needs confirmation, a time step and
//! a recovery code are accepted once even when two stores race, pending sign-ins expire and
//! go with a password change, and reset removes every second factor.

use super::*;
use crate::both_backends;
use crate::store::testing::{Backend, HASH, TestDb, user_id as user};

both_backends!(
    set_up_needs_confirmation_and_codes_are_single_use,
    racing_stores_accept_a_step_and_a_recovery_code_once,
    pending_sign_ins_expire_are_taken_once_and_die_with_a_password_change,
    reset_removes_every_second_factor,
);

fn codes(seed: u8) -> Vec<[u8; 32]> {
    (0..10).map(|i| [seed.wrapping_add(i); 32]).collect()
}

async fn set_up_needs_confirmation_and_codes_are_single_use(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = user(&s, "ann").await;
    assert_eq!(
        s.two_step_state(ann).await.unwrap(),
        TwoStepState::default()
    );
    assert!(s.begin_totp(ann, b"first".to_vec(), 10).await.unwrap());
    // A second set-up before confirming replaces the secret.
    assert!(s.begin_totp(ann, b"second".to_vec(), 11).await.unwrap());
    let st = s.two_step_state(ann).await.unwrap();
    assert!(!st.enabled());
    assert_eq!(st.totp.as_ref().unwrap().sealed_secret, b"second");
    // Unconfirmed: no step is accepted and no recovery code works.
    assert!(!s.accept_totp_step(ann, 5).await.unwrap());
    assert!(!s.replace_recovery_codes(ann, codes(1), 12).await.unwrap());
    assert!(s.confirm_totp(ann, 100, codes(1), 13).await.unwrap());
    assert!(
        !s.confirm_totp(ann, 101, codes(2), 14).await.unwrap(),
        "once"
    );
    let st = s.two_step_state(ann).await.unwrap();
    assert!(st.enabled());
    assert_eq!(st.recovery_left, 10);
    assert_eq!(st.totp.as_ref().unwrap().last_step, 100);
    // Once on, a new set-up changes nothing.
    assert!(!s.begin_totp(ann, b"third".to_vec(), 15).await.unwrap());
    assert_eq!(
        s.two_step_state(ann)
            .await
            .unwrap()
            .totp
            .unwrap()
            .sealed_secret,
        b"second"
    );
    // The confirmation's step and earlier ones are spent; later ones once each.
    assert!(!s.accept_totp_step(ann, 100).await.unwrap());
    assert!(!s.accept_totp_step(ann, 99).await.unwrap());
    assert!(s.accept_totp_step(ann, 101).await.unwrap());
    assert!(!s.accept_totp_step(ann, 101).await.unwrap());
    // Recovery codes: once each, and only the user's own.
    let bob = user(&s, "bob").await;
    assert!(!s.use_recovery_code(bob, codes(1)[0], 16).await.unwrap());
    assert!(s.use_recovery_code(ann, codes(1)[0], 16).await.unwrap());
    assert!(!s.use_recovery_code(ann, codes(1)[0], 17).await.unwrap());
    assert_eq!(s.two_step_state(ann).await.unwrap().recovery_left, 9);
    // New codes replace every old one.
    assert!(s.replace_recovery_codes(ann, codes(50), 18).await.unwrap());
    assert!(!s.use_recovery_code(ann, codes(1)[1], 19).await.unwrap());
    assert_eq!(s.two_step_state(ann).await.unwrap().recovery_left, 10);
    // Off: nothing left.
    assert!(s.turn_off_totp(ann).await.unwrap());
    assert!(!s.turn_off_totp(ann).await.unwrap());
    assert_eq!(
        s.two_step_state(ann).await.unwrap(),
        TwoStepState::default()
    );
    assert!(!s.use_recovery_code(ann, codes(50)[0], 20).await.unwrap());
}

async fn racing_stores_accept_a_step_and_a_recovery_code_once(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    let ann = user(&s1, "ann").await;
    s1.begin_totp(ann, b"secret".to_vec(), 1).await.unwrap();
    s1.confirm_totp(ann, 10, codes(7), 2).await.unwrap();
    for round in 0..10i64 {
        let step = 11 + round;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = if i % 2 == 0 { s1.clone() } else { s2.clone() };
            tasks.push(tokio::spawn(async move {
                s.accept_totp_step(ann, step).await.unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += t.await.unwrap() as usize;
        }
        assert_eq!(won, 1, "step {step} accepted once");
        let code = codes(7)[round as usize];
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = if i % 2 == 0 { s1.clone() } else { s2.clone() };
            tasks.push(tokio::spawn(async move {
                s.use_recovery_code(ann, code, 3).await.unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += t.await.unwrap() as usize;
        }
        assert_eq!(won, 1, "recovery code {round} used once");
    }
    assert_eq!(s2.two_step_state(ann).await.unwrap().recovery_left, 0);
}

fn pending(hash: u8, user_id: i64, changed: i64, now: i64) -> NewPending {
    NewPending {
        hash: [hash; 32],
        user_id,
        password_changed_ms: changed,
        next_url: Some("next=%2Faccount&sig=x".into()),
        now_ms: now,
        expires_ms: now + 300_000,
    }
}

async fn pending_sign_ins_expire_are_taken_once_and_die_with_a_password_change(b: Backend) {
    let db = TestDb::new(b);
    let (s1, s2) = (db.store(), db.store());
    let ann = user(&s1, "ann").await;
    s1.create_pending(pending(1, ann, 1, 1_000)).await.unwrap();
    let read = s2.read_pending([1; 32], 2_000).await.unwrap().unwrap();
    assert_eq!(read.user_id, ann);
    assert_eq!(read.password_changed_ms, 1);
    assert_eq!(read.next_url.as_deref(), Some("next=%2Faccount&sig=x"));
    assert_eq!(read.expires_ms, 301_000);
    assert!(s1.read_pending([2; 32], 2_000).await.unwrap().is_none());
    // Reading leaves it; taking it from two stores at once gives it to one.
    let (a, b2) = tokio::join!(
        s1.take_pending([1; 32], 3_000),
        s2.take_pending([1; 32], 3_000)
    );
    assert_eq!(a.unwrap().is_some() as u8 + b2.unwrap().is_some() as u8, 1);
    assert!(s1.read_pending([1; 32], 3_000).await.unwrap().is_none());
    // Expired: refused, and gone.
    s1.create_pending(pending(3, ann, 1, 1_000)).await.unwrap();
    assert!(s1.read_pending([3; 32], 301_000).await.unwrap().is_none());
    assert!(
        s1.read_pending([3; 32], 2_000).await.unwrap().is_none(),
        "purged"
    );
    s1.create_pending(pending(4, ann, 1, 1_000)).await.unwrap();
    assert!(s1.take_pending([4; 32], 301_000).await.unwrap().is_none());
    // Housekeeping purges the expired ones only.
    s1.create_pending(pending(5, ann, 1, 1_000)).await.unwrap();
    s1.create_pending(pending(6, ann, 1, 100_000))
        .await
        .unwrap();
    assert_eq!(s2.purge_expired_pending(301_000).await.unwrap(), 1);
    assert!(s1.read_pending([6; 32], 301_000).await.unwrap().is_some());
    // A password change deletes the user's pending sign-ins.
    let session = crate::store::NewSession {
        token_hash: [9; 32],
        user_id: ann,
        password_changed_ms: 5_000,
        now_ms: 5_000,
        expires_ms: 900_000,
        user_agent: None,
        ip: None,
        replaces: None,
    };
    s1.change_password(1, HASH.into(), session)
        .await
        .unwrap()
        .unwrap();
    assert!(s1.read_pending([6; 32], 6_000).await.unwrap().is_none());
}

async fn reset_removes_every_second_factor(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = user(&s, "ann").await;
    assert!(
        !s.reset_second_factors(ann).await.unwrap(),
        "nothing to remove"
    );
    s.begin_totp(ann, b"secret".to_vec(), 1).await.unwrap();
    s.confirm_totp(ann, 10, codes(7), 2).await.unwrap();
    s.create_pending(pending(1, ann, 1, 1_000)).await.unwrap();
    let sql = [
        format!(
            "INSERT INTO passkeys (user_id, credential_id, user_handle, name, passkey, created_at)
             VALUES ({ann}, X'01', X'02', 'laptop', '{{}}', 1)"
        ),
        format!(
            "INSERT INTO webauthn_ceremonies (hash, kind, user_id, address, state, created_at, expires_at)
             VALUES (X'{}', 'register', {ann}, '127.0.0.1', '{{}}', 1, 2)",
            "11".repeat(32)
        ),
    ];
    exec(&db, &sql).await;
    assert!(s.reset_second_factors(ann).await.unwrap());
    assert_eq!(
        s.two_step_state(ann).await.unwrap(),
        TwoStepState::default()
    );
    assert!(s.read_pending([1; 32], 2_000).await.unwrap().is_none());
    assert_eq!(
        count(&db, "SELECT count(*) FROM passkeys").await
            + count(&db, "SELECT count(*) FROM webauthn_ceremonies").await,
        0
    );
}

async fn exec(db: &TestDb, sql: &[String]) {
    match db.backend {
        Backend::Sqlite => {
            let c = rusqlite::Connection::open(&db.location).unwrap();
            for q in sql {
                c.execute(q, []).unwrap();
            }
        }
        Backend::Postgres => {
            let client = pg(db).await;
            for q in sql {
                client
                    .batch_execute(&q.replace("X'", "'\\x"))
                    .await
                    .unwrap();
            }
        }
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    match db.backend {
        Backend::Sqlite => rusqlite::Connection::open(&db.location)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap(),
        Backend::Postgres => pg(db).await.query_one(sql, &[]).await.unwrap().get(0),
    }
}

async fn pg(db: &TestDb) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
