//! What ends up on disk (docs/behaviour.md §5, §8): no secrets in the database, schema and pragmas,
//! rehash, the key file; and a database from a newer Gatehouse refused on both backends (§12).

use crate::both_backends;
use crate::common::*;

#[tokio::test]
async fn the_database_holds_no_password_digest_or_session_id() {
    let app = TestApp::spawn(&[]);
    let password = "distinctive-Pa55word";
    let c = app.client();
    sign_up(&app, &c, "secretive", password).await;
    let r = sign_in(&app, &c, "secretive", password).await;
    let cookie = session_cookie(&r).unwrap();
    // And once over JSON with a digest.
    let digest = gatehouse::security::digest::PasswordDigest::compute("other", password);
    let r = c
        .post(app.url("/api/users"))
        .json(&serde_json::json!({"username": "other", "password_digest": digest.to_wire()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let own_digest = gatehouse::security::digest::PasswordDigest::compute("secretive", password);
    let needles: Vec<Vec<u8>> = vec![
        password.as_bytes().to_vec(),
        own_digest.to_wire().into_bytes(),
        own_digest.as_bytes().to_vec(),
        hex::encode(own_digest.as_bytes()).into_bytes(),
        digest.to_wire().into_bytes(),
        digest.as_bytes().to_vec(),
        cookie.clone().into_bytes(),
        cookie.replace('-', "").into_bytes(),
        uuid::Uuid::parse_str(&cookie).unwrap().as_bytes().to_vec(),
    ];
    let db = app.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut cells = 0;
    for t in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                cells += 1;
                let bytes: Vec<u8> = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        b.to_vec()
                    }
                    other => format!("{other:?}").into_bytes(),
                };
                for needle in &needles {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                        "secret found in {t} column {i}"
                    );
                }
            }
        }
    }
    assert!(cells > 20);
    // The stored hash is Argon2id over the digest, with a fresh salt per user.
    let hashes: Vec<String> = db
        .prepare("SELECT password_hash FROM users")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(hashes.iter().all(|h| h.starts_with("$argon2id$v=19$")));
    // The log never carries the password or digest either.
    let log = app.log();
    assert!(
        !log.contains(password) && !log.contains(&own_digest.to_wire()) && !log.contains(&cookie)
    );
}

#[tokio::test]
async fn database_is_wal_with_a_schema_version_and_the_key_file_is_private() {
    let app = TestApp::spawn(&[]);
    let db = app.db();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let v: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 1);
    let key = app.dir.path().join("gatehouse.key");
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.len(), 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn the_key_file_survives_restarts() {
    // The key file persists across restarts: a redirect signed before verifies after.
    let mut app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "keeper", "keeper-password").await;
    let c = app.client();
    let loc = location(&c.get(app.url("/account")).send().await.unwrap());
    app.restart();
    let html = app
        .client()
        .get(app.url(&loc))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden_value(&html, "next").as_deref(), Some("/account"));
}

#[tokio::test]
async fn a_changed_kdf_cost_rehashes_on_sign_in() {
    let mut app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "upgrader", "upgrader-password").await;
    let hash = |app: &TestApp| -> String {
        app.db()
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap()
    };
    assert!(hash(&app).contains("m=64,t=1,p=1"), "{}", hash(&app));
    // Same database, higher costs.
    app.restart_with(&["--argon2-m", "128", "--argon2-t", "2"]);
    assert_eq!(
        sign_in(&app, &app.client(), "upgrader", "upgrader-password")
            .await
            .status(),
        303
    );
    let mut after = hash(&app);
    for _ in 0..50 {
        if after.contains("m=128,t=2,p=1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = hash(&app);
    }
    assert!(after.contains("m=128,t=2,p=1"), "rehashed: {after}");
    assert_eq!(
        sign_in(&app, &app.client(), "upgrader", "upgrader-password")
            .await
            .status(),
        303
    );
    assert_eq!(
        sign_in(&app, &app.client(), "upgrader", "wrong-password")
            .await
            .status(),
        401
    );
}

/// The newest `-- @version N` of the built-in schema, and the SQL of its first section.
fn schema_versions() -> (i64, String) {
    let schema = gatehouse::store::sqlite::SCHEMA;
    let latest = schema
        .lines()
        .filter_map(|l| l.strip_prefix("-- @version "))
        .map(|v| v.trim().parse::<i64>().unwrap())
        .max()
        .unwrap();
    let start = schema.find("-- @version 1").unwrap();
    let end = schema.find("-- @version 2").unwrap();
    (latest, schema[start..end].to_owned())
}

#[tokio::test]
async fn a_fresh_database_logs_one_created_schema_line() {
    let (latest, _) = schema_versions();
    let app = TestApp::spawn(&[]);
    let log = app.log();
    let created = format!("created schema v{latest}");
    assert_eq!(log.matches(&created).count(), 1, "{log}");
    assert!(!log.contains("upgraded"), "{log}");
}

#[tokio::test]
async fn an_older_database_logs_each_upgrade() {
    let (latest, first_section) = schema_versions();
    assert!(latest >= 2, "needs a schema with an upgrade");
    let dir = tempfile::tempdir().unwrap();
    rusqlite::Connection::open(dir.path().join("users.database"))
        .unwrap()
        .execute_batch(&first_section)
        .unwrap();
    let app = TestApp::spawn_in(dir, &[]);
    let log = app.log();
    for version in 2..=latest {
        assert!(
            log.contains(&format!("database schema upgraded version={version}")),
            "{log}"
        );
    }
    assert!(!log.contains("created schema"), "{log}");
    let v: i64 = app
        .db()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, latest);
}

/// §12: a database made by a newer Gatehouse is refused at start, with a message saying so,
/// on either backend (the SQLite one stopped first: one server per file).
async fn a_database_newer_than_the_binary_is_refused(backend: Backend) {
    let mut app = TestApp::spawn_on(backend, &[]);
    app.stop();
    let database = app.database();
    match backend {
        Backend::Sqlite => rusqlite::Connection::open(&database)
            .unwrap()
            .pragma_update(None, "user_version", 999)
            .unwrap(),
        Backend::Postgres => pg_execute(
            database.to_str().unwrap(),
            "UPDATE schema_version SET version = 999",
        ),
    }
    let db = database.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--database", db];
    let key_file = dir.path().join("key");
    if let Some(key) = app.key_hex() {
        std::fs::write(&key_file, hex::decode(key).unwrap()).unwrap();
        args.extend(["--secret-key-file", key_file.to_str().unwrap()]);
    }
    let refused = serve_with_args_expecting_exit(&args, std::time::Duration::from_secs(30))
        .expect("a server on a newer database exits");
    assert_ne!(refused.code, 0);
    let stderr = refused.stderr;
    assert!(
        stderr.contains("created by a newer Gatehouse (schema version 999)"),
        "{stderr}"
    );
}

both_backends!(a_database_newer_than_the_binary_is_refused);
