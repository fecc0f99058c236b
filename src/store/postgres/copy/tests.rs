//! `db copy`: every row arrives as it was; refusals write nothing.

use super::*;
use crate::store::Store;
use crate::store::testing::{Backend, TestDb, pg_client};

/// A SQLite database with rows in every table: NULLs and values, a disabled user, a
/// mixed-case address, blobs, and a deleted user (so `sqlite_sequence` is past max(id)).
fn sqlite_source() -> TestDb {
    let db = TestDb::new(Backend::Sqlite);
    drop(db.store());
    let c = Connection::open(&db.location).unwrap();
    c.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO users (id, username, email, full_name, password_hash, active,
                            created_at, updated_at, password_changed_at, unlocked_at,
                            email_verified_at, pending_email, pending_email_at)
         VALUES (1, 'ann', 'Ann.Lee@Example.ORG', 'Ann Lée', '$argon2id$v=19$a', 1,
                 10, 11, 12, 13, 14, 'new@example.org', 15),
                (2, 'bob', NULL, NULL, '$argon2id$v=19$b', 0, 20, 20, 20, 0, NULL, NULL, NULL),
                (3, 'gone', NULL, NULL, '$argon2id$v=19$c', 1, 30, 30, 30, 0, NULL, NULL, NULL);
         INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at,
                               user_agent, ip)
         VALUES (5, randomblob(32), 1, 100, 101, 102, 'Firefox', '192.0.2.1'),
                (9, randomblob(32), 2, 200, 201, 202, NULL, NULL),
                (12, randomblob(32), 3, 1, 1, 1, NULL, NULL);
         INSERT INTO user_groups VALUES (1, 'staff'), (1, 'ops-2'), (2, 'staff');
         INSERT INTO tokens VALUES (randomblob(32), 1, 'reset', NULL, 1, 2, NULL),
                                   (randomblob(32), 1, 'verify', 'new@example.org', 3, 4, 5);
         INSERT INTO audit_events (id, at, last_at, count, event, outcome, username,
                                   user_id, ip, user_agent, detail)
         VALUES (7, 1, 2, 3, 'sign_in', 'locked', 'ann', 1, '192.0.2.1', 'curl', 'x'),
                (8, 4, 4, 1, 'sign_up', 'ok', NULL, NULL, NULL, NULL, NULL);
         INSERT INTO outbox (id, message_id, recipient, kind, body, created_at, expires_at,
                             attempts, next_try_at, claimed_until)
         VALUES (4, '<m1@x>', 'Ann.Lee@Example.ORG', 'password_reset', x'00ff10', 1, 2, 3, 4, 5);
         INSERT INTO mail_rate VALUES ('ann.lee@example.org', 6);
         INSERT INTO meta VALUES ('key_fingerprint', '0123456789abcdef');
         INSERT INTO totp VALUES (1, x'0102', 16, 17, 58000000);
         INSERT INTO recovery_codes VALUES (1, randomblob(32), 16, NULL),
                                           (1, randomblob(32), 16, 18);
         INSERT INTO pending_sign_ins VALUES (randomblob(32), 1, 12, '/members/?x=1', 19, 20);
         INSERT INTO passkeys (id, user_id, credential_id, user_handle, name, passkey,
                               counter, created_at, last_used_at)
         VALUES (3, 1, x'c0ffee', x'0a0b', 'laptop', '{\"cred\":1}', 7, 21, 22),
                (6, 2, x'beef', x'0c0d', 'phone', '{}', 0, 23, NULL);
         INSERT INTO webauthn_ceremonies VALUES (randomblob(32), 'authenticate', NULL,
                                                 '192.0.2.1', '{}', 24, 25),
                                                (randomblob(32), 'register', 1,
                                                 '192.0.2.1', '{}', 26, 27);
         DELETE FROM users WHERE id = 3;",
    )
    .unwrap();
    db
}

/// Every row of every table, by its PostgreSQL type, in a stable order.
fn sqlite_rows(path: &Path, t: &Table) -> Vec<Vec<Cell>> {
    let c = Connection::open(path).unwrap();
    let cols: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
    let sql = format!("SELECT {0} FROM {1} ORDER BY {0}", cols.join(", "), t.name);
    let mut stmt = c.prepare(&sql).unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        out.push(
            t.columns
                .iter()
                .enumerate()
                .map(|(i, (_, k))| Cell::read(r.get_ref(i).unwrap(), *k).unwrap())
                .collect(),
        );
    }
    out
}

async fn pg_rows(client: &tokio_postgres::Client, t: &Table) -> Vec<Vec<Cell>> {
    let cols: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
    let sql = format!("SELECT {0} FROM {1} ORDER BY {0}", cols.join(", "), t.name);
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            t.columns
                .iter()
                .enumerate()
                .map(|(i, (_, k))| match k {
                    Int => Cell::Int(r.get(i)),
                    Text => Cell::Text(r.get(i)),
                    Bytes => Cell::Bytes(r.get(i)),
                    Bool => Cell::Bool(r.get(i)),
                })
                .collect()
        })
        .collect()
}

fn pg_store(db: &TestDb) -> PgStore {
    match db.store() {
        Store::Postgres(p) => p,
        Store::Sqlite(_) => unreachable!(),
    }
}

async fn copy(source: &Path, target: &PgStore) -> Result<Copied, CopyError> {
    from_sqlite(source, target, &mut |_| {}, &mut |_| {}).await
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_every_table_arrives_as_it_was() {
    let source = sqlite_source();
    let target_db = TestDb::new(Backend::Postgres);
    let target = pg_store(&target_db);
    let copied = copy(&source.location, &target).await.unwrap();
    let counts: Vec<(&str, u64)> = copied.clone();
    assert_eq!(
        counts,
        [
            ("users", 2),
            ("sessions", 2),
            ("user_groups", 3),
            ("tokens", 2),
            ("audit_events", 2),
            ("retired_usernames", 1),
            ("outbox", 1),
            ("mail_rate", 1),
            ("meta", 1),
            ("totp", 1),
            ("recovery_codes", 2),
            ("pending_sign_ins", 1),
            ("passkeys", 2),
            ("webauthn_ceremonies", 2),
        ]
    );
    let client = pg_client(target_db.url()).await;
    for t in TABLES {
        let want = sqlite_rows(&source.location, t);
        assert_eq!(pg_rows(&client, t).await, want, "table {}", t.name);
    }
    let keys: Vec<Option<String>> = client
        .query("SELECT email_key FROM users ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, [Some("ann.lee@example.org".to_owned()), None]);
    // New rows get ids past every id the source gave out, the deleted user's too.
    let store = Store::Postgres(target.clone());
    store
        .import_users(
            &[(
                crate::domain::Username::parse("cyd").unwrap(),
                "$argon2id$v=19$d".into(),
            )],
            1,
        )
        .await
        .unwrap();
    let cy = store
        .user_details(&crate::domain::Username::parse("cyd").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cy.id, 4, "users: past the deleted user 3");
    for (table, next) in [("sessions", 13), ("audit_events", 9), ("outbox", 5)] {
        let got: i64 = client
            .query_one(
                &format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, next, "{table}");
    }
    // The copy passes the PostgreSQL check, and the sessions work.
    let report = super::super::check::check(target_db.url(), &Default::default())
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.users, report.sessions), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_rows_is_refused_and_kept() {
    let source = sqlite_source();
    let target_db = TestDb::new(Backend::Postgres);
    let target = pg_store(&target_db);
    let client = pg_client(target_db.url()).await;
    client
        .batch_execute("INSERT INTO mail_rate VALUES ('x@example.org', 1)")
        .await
        .unwrap();
    let err = copy(&source.location, &target).await.unwrap_err();
    assert!(
        matches!(&err, CopyError::Refused(m) if m.contains("not empty (mail_rate")),
        "{err}"
    );
    assert_eq!(count(&client, "users").await, 0);
    assert_eq!(count(&client, "mail_rate").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tables_columns_and_versions_are_refused() {
    let target_db = TestDb::new(Backend::Postgres);
    let target = pg_store(&target_db);
    let client = pg_client(target_db.url()).await;
    for (change, expected) in [
        (
            "CREATE TABLE passkey_notes (id INTEGER PRIMARY KEY)",
            "table(s) this gatehouse does not know: passkey_notes",
        ),
        (
            "ALTER TABLE sessions ADD COLUMN device TEXT",
            "table sessions does not have the columns this gatehouse knows (unknown: device",
        ),
        ("PRAGMA user_version = 5", "schema version 5"),
        ("PRAGMA user_version = 8", "newer than this gatehouse"),
    ] {
        let source = sqlite_source();
        Connection::open(&source.location)
            .unwrap()
            .execute_batch(change)
            .unwrap();
        let err = check_source_file(&source.location).unwrap_err();
        assert!(err.to_string().contains(expected), "{change}: {err}");
        let err = copy(&source.location, &target).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{change}: {err}");
        assert_eq!(count(&client, "users").await, 0, "{change}");
    }
    // SQLite's own bookkeeping is no stranger.
    let source = sqlite_source();
    Connection::open(&source.location)
        .unwrap()
        .execute_batch("ANALYZE")
        .unwrap();
    check_source_file(&source.location).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_half_way_leaves_the_target_empty() {
    let source = sqlite_source();
    // With foreign keys off, a group of a missing user gets in.
    Connection::open(&source.location)
        .unwrap()
        .execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO user_groups VALUES (99, 'orphans')")
        .unwrap();
    let target_db = TestDb::new(Backend::Postgres);
    let target = pg_store(&target_db);
    let err = copy(&source.location, &target).await.unwrap_err();
    assert!(err.to_string().contains("user_groups"), "{err}");
    let client = pg_client(target_db.url()).await;
    for t in TABLES {
        assert_eq!(count(&client, t.name).await, 0, "{}", t.name);
    }
    // A value SQLite let in that has no PostgreSQL form: named, nothing written.
    let source = sqlite_source();
    Connection::open(&source.location)
        .unwrap()
        .execute_batch("UPDATE audit_events SET count = 'many' WHERE id = 8")
        .unwrap();
    let err = copy(&source.location, &target).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("audit_events row 2: column count holds Text"),
        "{err}"
    );
    assert_eq!(count(&client, "users").await, 0);
}
