//! The SQLite backend's own tests: schema, migrations, sessions, the reader cache.

use super::*;
use crate::store::NewSession;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("users.database")).unwrap();
    (dir, s)
}

use crate::store::testing::HASH;
const HASH2: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$b3RoZXJvdGhlcm90aGVyMQ";

fn user(s: &SqliteStore, name: &str) -> User {
    s.create_user(&Username::parse(name).unwrap(), None, None, HASH, 1_000)
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

#[test]
fn schema_version_wal_and_foreign_keys() {
    let (dir, s) = store();
    let c = Connection::open(dir.path().join("users.database")).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, migrations().last().unwrap().0);
    let mode: String = c
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: bool = s
        .inner
        .writer
        .lock()
        .unwrap()
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(fk);
    drop(s);
    // Re-opening applies nothing twice.
    SqliteStore::open(&dir.path().join("users.database")).unwrap();
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    Connection::open(&p)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    assert!(matches!(
        SqliteStore::open(&p),
        Err(StoreError::TooNew(999))
    ));
}

#[test]
fn migrations_parse_in_order() {
    let m = migrations();
    assert!(!m.is_empty());
    assert!(m.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(m[0].0, 1);
}

#[test]
fn uniqueness_of_username_and_email() {
    let (_d, s) = store();
    let email = Email::parse_optional("Ann@Example.com").unwrap();
    s.create_user(
        &Username::parse("ann").unwrap(),
        email.as_ref(),
        None,
        HASH,
        1,
    )
    .unwrap()
    .unwrap();
    assert!(matches!(
        s.create_user(&Username::parse("ANN").unwrap(), None, None, HASH, 1),
        Ok(Err(Taken::Username))
    ));
    let upper = Email::parse_optional("ann@EXAMPLE.COM").unwrap();
    assert!(matches!(
        s.create_user(
            &Username::parse("ann2").unwrap(),
            upper.as_ref(),
            None,
            HASH,
            1
        ),
        Ok(Err(Taken::Email))
    ));
    assert!(matches!(
        s.taken(&Username::parse("ann").unwrap(), None),
        Ok(Some(Taken::Username))
    ));
    assert!(matches!(
        s.taken(&Username::parse("bob").unwrap(), upper.as_ref()),
        Ok(Some(Taken::Email))
    ));
    assert!(matches!(
        s.taken(&Username::parse("bob").unwrap(), None),
        Ok(None)
    ));
    // Two users without email are fine (NULLs are distinct).
    user(&s, "carol");
    user(&s, "dave");
}

#[test]
fn sessions_need_an_unchanged_password_and_an_active_user() {
    let (_d, s) = store();
    let u = user(&s, "alice");
    let mut stale = new_session(u.id, 1, 2_000);
    stale.password_changed_ms = 999;
    assert_eq!(
        s.create_session(&stale).unwrap(),
        None,
        "password changed meanwhile"
    );
    // A rehash (same password, new PHC string) does not stop a sign-in.
    assert!(s.rehash(u.id, HASH, HASH2, 1_500).unwrap());
    let id = s
        .create_session(&new_session(u.id, 2, 2_000))
        .unwrap()
        .unwrap();
    let rec = s.session(&[2; 32]).unwrap().unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.user.username, "alice");
    assert!(s.session(&[3; 32]).unwrap().is_none());
}

#[test]
fn change_password_is_conditional_and_ends_other_sessions() {
    let (_d, s) = store();
    let u = user(&s, "alice");
    s.create_session(&new_session(u.id, 1, 2_000))
        .unwrap()
        .unwrap();
    s.create_session(&new_session(u.id, 2, 2_000))
        .unwrap()
        .unwrap();
    let mut rotated = new_session(u.id, 3, 3_000);
    rotated.password_changed_ms = 3_000;
    assert!(s.change_password(1_000, HASH2, &rotated).unwrap().is_some());
    assert!(s.session(&[1; 32]).unwrap().is_none());
    assert!(s.session(&[2; 32]).unwrap().is_none());
    let rec = s.session(&[3; 32]).unwrap().unwrap();
    assert_eq!(rec.state.password_changed_ms, 3_000);
    // A second change verified before the first one fails: it was changed meanwhile.
    let mut late = new_session(u.id, 4, 4_000);
    late.password_changed_ms = 4_000;
    assert!(s.change_password(1_000, HASH, &late).unwrap().is_none());
    assert!(s.session(&[4; 32]).unwrap().is_none());
    // Rehash from the old hash cannot bring the old password back.
    assert!(!s.rehash(u.id, HASH, HASH, 5_000).unwrap());
    assert!(s.rehash(u.id, HASH2, HASH, 5_000).unwrap());
}

#[test]
fn at_most_fifty_sessions_per_user_oldest_go_first() {
    let (_d, s) = store();
    let u = user(&s, "alice");
    for i in 0..55u8 {
        s.create_session(&new_session(u.id, i, 2_000 + i as i64))
            .unwrap()
            .unwrap();
    }
    let list = s.sessions_of(u.id, 2_100, 1_000_000).unwrap();
    assert_eq!(list.len(), 50);
    for i in 0..5u8 {
        assert!(s.session(&[i; 32]).unwrap().is_none());
    }
    assert!(s.session(&[54; 32]).unwrap().is_some());
    assert_eq!(list[0].created_ms, 2_054, "newest first");
}

#[test]
fn revoke_only_own_sessions_and_purge_expired() {
    let (_d, s) = store();
    let a = user(&s, "alice");
    let b = user(&s, "bob");
    let sa = s
        .create_session(&new_session(a.id, 1, 2_000))
        .unwrap()
        .unwrap();
    let sb = s
        .create_session(&new_session(b.id, 2, 2_000))
        .unwrap()
        .unwrap();
    assert!(!s.delete_user_session(a.id, sb).unwrap());
    assert!(s.session(&[2; 32]).unwrap().is_some());
    assert!(s.delete_user_session(a.id, sa).unwrap());
    s.create_session(&new_session(a.id, 3, 2_000)).unwrap();
    let keep = s
        .create_session(&new_session(a.id, 4, 2_000))
        .unwrap()
        .unwrap();
    assert_eq!(s.delete_other_sessions(a.id, keep).unwrap(), 1);
    // expires_at = 102_000
    assert_eq!(s.purge_expired_sessions(50_000, 1_000_000).unwrap(), 0);
    assert_eq!(s.purge_expired_sessions(102_000, 1_000_000).unwrap(), 2);
    s.create_session(&new_session(a.id, 5, 2_000)).unwrap();
    s.touch_later(keep, 1);
    assert_eq!(s.flush_touches().unwrap(), 1);
    assert_eq!(
        s.purge_expired_sessions(2_500, 500).unwrap(),
        1,
        "idle limit"
    );
}

#[test]
fn touches_are_batched_and_never_move_last_seen_back() {
    let (_d, s) = store();
    let a = user(&s, "alice");
    let id = s
        .create_session(&new_session(a.id, 9, 5_000))
        .unwrap()
        .unwrap();
    s.touch_later(id, 7_000);
    s.touch_later(id, 6_000);
    assert_eq!(s.flush_touches().unwrap(), 1);
    assert_eq!(s.flush_touches().unwrap(), 0);
    s.touch_later(id, 5_500);
    s.flush_touches().unwrap();
    let rec = s.session(&[9; 32]).unwrap().unwrap();
    assert_eq!(rec.state.last_seen_ms, 7_000);
    // A touch for a session deleted meanwhile is harmless.
    s.delete_session_by_hash(&[9; 32]).unwrap();
    s.touch_later(id, 8_000);
    assert_eq!(s.flush_touches().unwrap(), 1);
}

#[test]
fn cached_session_lookups_see_every_commit_from_any_connection() {
    let (dir, s) = store();
    let a = user(&s, "alice");
    s.create_session(&new_session(a.id, 7, 5_000))
        .unwrap()
        .unwrap();
    assert!(s.session(&[7; 32]).unwrap().is_some());
    assert!(s.session(&[7; 32]).unwrap().is_some(), "cached");
    assert!(s.session(&[8; 32]).unwrap().is_none(), "negative, cached");
    // Our own writer connection commits: seen at once.
    s.create_session(&new_session(a.id, 8, 5_000))
        .unwrap()
        .unwrap();
    assert!(s.session(&[8; 32]).unwrap().is_some());
    // Another process (here: another connection) revokes and disables: seen at once.
    let other = Connection::open(dir.path().join("users.database")).unwrap();
    other
        .execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [&[7u8; 32][..]],
        )
        .unwrap();
    assert!(s.session(&[7; 32]).unwrap().is_none());
    other.execute("UPDATE users SET active = 0", []).unwrap();
    assert!(!s.session(&[8; 32]).unwrap().unwrap().state.user_active);
}

#[test]
fn disabled_users_get_no_session() {
    let (_d, s) = store();
    let u = user(&s, "alice");
    s.write(|c| Ok(c.execute("UPDATE users SET active = 0", [])?))
        .unwrap();
    assert_eq!(
        s.create_session(&new_session(u.id, 1, 2_000)).unwrap(),
        None
    );
}

#[test]
fn deleting_a_user_deletes_their_sessions() {
    let (_d, s) = store();
    let u = user(&s, "alice");
    s.create_session(&new_session(u.id, 1, 2_000)).unwrap();
    s.write(|c| Ok(c.execute("DELETE FROM users WHERE id = ?1", [u.id])?))
        .unwrap();
    let n: i64 = s
        .read(|c| Ok(c.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn reset_tokens_are_single_use_superseded_expiring_and_killed_by_password_changes() {
    use crate::security::token::Purpose;
    use crate::store::tokens::NewToken;
    let (_dir, s) = store();
    let u = user(&s, "rita");
    let token = |hash: u8, now: i64| NewToken {
        hash: [hash; 32],
        user_id: u.id,
        purpose: Purpose::Reset,
        email: None,
        now_ms: now,
        expires_ms: now + 3_600_000,
    };
    s.create_token(&token(1, 2_000)).unwrap();
    let found = s
        .find_token(&[1; 32], Purpose::Reset, 2_001)
        .unwrap()
        .unwrap();
    assert_eq!((found.user_id, found.username.as_str()), (u.id, "rita"));
    // Another purpose, an expired time, an unknown hash: nothing.
    assert!(
        s.find_token(&[1; 32], Purpose::Verify, 2_001)
            .unwrap()
            .is_none()
    );
    assert!(
        s.find_token(&[1; 32], Purpose::Reset, 2_000 + 3_600_000)
            .unwrap()
            .is_none()
    );
    assert!(
        s.find_token(&[9; 32], Purpose::Reset, 2_001)
            .unwrap()
            .is_none()
    );
    // A newer link supersedes the older one.
    s.create_token(&token(2, 3_000)).unwrap();
    assert!(
        s.find_token(&[1; 32], Purpose::Reset, 3_001)
            .unwrap()
            .is_none()
    );
    assert!(
        s.find_token(&[2; 32], Purpose::Reset, 3_001)
            .unwrap()
            .is_some()
    );
    // Consuming sets the hash, ends the sessions, forgives the lock; a second use is nothing.
    s.create_session(&new_session(u.id, 7, 3_100))
        .unwrap()
        .unwrap();
    let done = s
        .reset_password_with_token(&[2; 32], HASH2, 4_000, None)
        .unwrap();
    assert_eq!(done.map(|t| t.user_id), Some(u.id));
    assert!(
        s.reset_password_with_token(&[2; 32], HASH, 4_001, None)
            .unwrap()
            .is_none()
    );
    let creds = s.credentials("rita").unwrap().unwrap();
    assert_eq!(creds.password_hash, HASH2);
    assert_eq!(creds.unlocked_ms, 4_000);
    assert!(creds.password_changed_ms >= 4_000);
    assert!(s.session(&[7; 32]).unwrap().is_none());
    // A password change by another route (here the admin's) kills a live link.
    s.create_token(&token(3, 5_000)).unwrap();
    s.set_password(&Username::parse("rita").unwrap(), HASH, 5_500)
        .unwrap();
    assert!(
        s.find_token(&[3; 32], Purpose::Reset, 5_600)
            .unwrap()
            .is_none()
    );
    // A disabled user's link opens nothing.
    s.create_token(&token(4, 6_000)).unwrap();
    s.set_active(&Username::parse("rita").unwrap(), false, 6_100)
        .unwrap();
    assert!(
        s.find_token(&[4; 32], Purpose::Reset, 6_200)
            .unwrap()
            .is_none()
    );
    assert!(
        s.reset_password_with_token(&[4; 32], HASH2, 6_300, None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn logins_match_a_username_or_an_email_ignoring_ascii_case() {
    use crate::domain::Email;
    let (_dir, s) = store();
    let with_mail = s
        .create_user(
            &Username::parse("nina").unwrap(),
            Email::parse_optional("Nina@Example.org").unwrap().as_ref(),
            None,
            HASH,
            1_000,
        )
        .unwrap()
        .unwrap();
    user(&s, "omar");
    for login in ["nina", "NINA", "nina@example.org", "NINA@EXAMPLE.ORG"] {
        let m = s.find_login(login).unwrap().unwrap();
        assert_eq!((m.user_id, m.username.as_str()), (with_mail.id, "nina"));
        assert_eq!(m.email.as_deref(), Some("Nina@Example.org"));
        assert!(!m.email_verified);
    }
    let omar = s.find_login("Omar").unwrap().unwrap();
    assert_eq!((omar.email, omar.email_verified), (None, false));
    assert!(s.find_login("nobody").unwrap().is_none());
    assert!(s.find_login("nina@example.com").unwrap().is_none());
    s.write(|c| Ok(c.execute("UPDATE users SET email_verified_at = 5 WHERE id = 1", [])?))
        .unwrap();
    assert!(s.find_login("nina").unwrap().unwrap().email_verified);
    s.set_active(&Username::parse("nina").unwrap(), false, 2_000)
        .unwrap();
    assert!(
        s.find_login("nina").unwrap().is_none(),
        "a disabled user matches nothing"
    );
}

#[test]
fn a_token_goes_in_with_its_mail_within_the_hourly_budget_or_not_at_all() {
    use crate::security::token::Purpose;
    use crate::store::tokens::{NewToken, TokenIssued, TokenMail};
    use crate::store::{Enqueued, NewMail, OutboxLimits};
    let (_dir, s) = store();
    let u = user(&s, "pia");
    let token = |hash: u8, now: i64| NewToken {
        hash: [hash; 32],
        user_id: u.id,
        purpose: Purpose::Reset,
        email: None,
        now_ms: now,
        expires_ms: now + 3_600_000,
    };
    let mail = |n: u8, per_recipient: i64| TokenMail {
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
        per_hour: Some(2),
    };
    let live = |hash: u8| {
        s.find_token(&[hash; 32], Purpose::Reset, 10_000)
            .unwrap()
            .is_some()
    };
    assert_eq!(
        s.create_token_with_mail(&token(1, 1_000), &mail(1, 10))
            .unwrap(),
        TokenIssued::Issued(Enqueued::Queued)
    );
    // The outbox drops the mail (its per-recipient bound): no token, the mailed link lives.
    assert_eq!(
        s.create_token_with_mail(&token(2, 2_000), &mail(2, 1))
            .unwrap(),
        TokenIssued::Issued(Enqueued::DroppedRate)
    );
    assert!(live(1) && !live(2));
    assert_eq!(
        s.create_token_with_mail(&token(3, 3_000), &mail(3, 10))
            .unwrap(),
        TokenIssued::Issued(Enqueued::Queued)
    );
    // Past the account's budget of 2 an hour: nothing written.
    assert_eq!(
        s.create_token_with_mail(&token(4, 4_000), &mail(4, 10))
            .unwrap(),
        TokenIssued::OverBudget
    );
    assert!(!live(1) && live(3) && !live(4));
    let queued: i64 = s
        .read(|c| Ok(c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(queued, 2);
}
