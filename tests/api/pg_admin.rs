//! Admin operations on PostgreSQL (docs/behaviour.md §12), through the real binary: every
//! admin command against a PostgreSQL database, `db copy` of a SQLite site into an empty
//! PostgreSQL one (users sign in with their old passwords, sessions and the audit trail kept,
//! an unknown table or a non-empty target refused with nothing written), `db check` on both
//! backends, and `key rotate`. PostgreSQL comes from `GATEHOUSE_TEST_PG`, a fresh database
//! per test.

use std::path::Path;
use std::time::Duration;

use futures_util::FutureExt;

use crate::common::*;

/// A key file of 32 bytes of `byte`, in `dir`.
fn key_file(dir: &Path, name: &str, byte: u8) -> String {
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The first value of `sql` on the database at `url`, a number.
fn pg_number(url: &str, sql: &str) -> i64 {
    pg_query_text(url, sql)
        .expect("a value")
        .parse()
        .expect("a number")
}

fn ok(run: AdminRun, what: &str) -> AdminRun {
    assert_eq!(run.code, 0, "{what}: {run:?}");
    run
}

fn refused_with(run: AdminRun, what: &str, message: &str) {
    assert_eq!(run.code, 1, "{what}: {run:?}");
    assert!(run.stderr.contains(message), "{what}: {run:?}");
}

#[tokio::test]
async fn every_admin_command_works_on_postgresql() {
    let url = fresh_pg_database();
    let db = Path::new(&url);
    let run = ok(
        admin_at(
            db,
            &["user", "add", "alice", "--email", "Alice@Example.org"],
            "alice-password\n",
        ),
        "user add",
    );
    assert!(run.stderr.contains("created user alice"), "{run:?}");
    ok(
        admin_at(db, &["user", "add", "bob"], "bob-password\n"),
        "add",
    );
    refused_with(
        admin_at(
            db,
            &["user", "add", "carol", "--email", "ALICE@example.org"],
            "carol-password\n",
        ),
        "same address, other case",
        "email is taken",
    );
    let list = ok(admin_at(db, &["user", "list"], ""), "user list");
    let names: Vec<&str> = list
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"], "{list:?}");

    let app = TestApp::spawn_pg(&url, &random_key_hex(), &[]);
    let c = app.client();
    assert_eq!(
        sign_in(&app, &c, "alice", "alice-password").await.status(),
        303
    );
    let r = sign_in(&app, &app.client(), "bob", "bob-password").await;
    let bob_cookie = session_cookie(&r).expect("bob's session");
    assert!(cookie_works(&app, &bob_cookie).await);

    let show = ok(admin_at(db, &["user", "show", "alice"], ""), "user show");
    assert!(show.stdout.contains("status: active"), "{show:?}");
    assert!(show.stdout.contains("sessions: 1"), "{show:?}");
    let sessions = ok(admin_at(db, &["session", "list"], ""), "session list");
    assert_eq!(sessions.stdout.lines().count(), 3, "{sessions:?}");
    let only_bob = ok(
        admin_at(db, &["session", "list", "--user", "bob"], ""),
        "session list --user",
    );
    let bob_row = only_bob.stdout.lines().nth(1).expect("bob's session");
    assert_eq!(only_bob.stdout.lines().count(), 2, "{only_bob:?}");
    let bob_session = bob_row.split('\t').next().unwrap();

    // Groups: what forward-auth's ?group= reads, on every instance.
    ok(
        admin_at(db, &["user", "group", "add", "alice", "staff"], ""),
        "group add",
    );
    let show = ok(admin_at(db, &["user", "show", "alice"], ""), "user show");
    assert!(show.stdout.contains("groups: staff"), "{show:?}");
    ok(
        admin_at(db, &["user", "group", "remove", "alice", "staff"], ""),
        "group remove",
    );
    let show = ok(admin_at(db, &["user", "show", "alice"], ""), "user show");
    assert!(show.stdout.contains("groups: none"), "{show:?}");

    // A revoke from the command line ends the session on the running server (by notification:
    // within §12's 100 ms).
    ok(
        admin_at(db, &["session", "revoke", bob_session], ""),
        "session revoke",
    );
    assert!(honoured(&app, || cookie_works(&app, &bob_cookie).map(|works| !works)).await);
    refused_with(
        admin_at(db, &["session", "revoke", bob_session], ""),
        "revoke again",
        "no session",
    );

    // Disable ends alice's session at once; enable lets her sign in again.
    let r = sign_in(&app, &app.client(), "alice", "alice-password").await;
    let alice_cookie = session_cookie(&r).unwrap();
    ok(admin_at(db, &["user", "disable", "alice"], ""), "disable");
    assert!(!cookie_works(&app, &alice_cookie).await);
    assert_eq!(
        sign_in(&app, &app.client(), "alice", "alice-password")
            .await
            .status(),
        401
    );
    ok(admin_at(db, &["user", "enable", "alice"], ""), "enable");
    assert_eq!(
        sign_in(&app, &app.client(), "alice", "alice-password")
            .await
            .status(),
        303
    );

    // A lock built on the server is lifted by the command.
    fail_three_times(&app, &app.client(), "bob").await;
    assert_eq!(
        sign_in(&app, &app.client(), "bob", "bob-password")
            .await
            .status(),
        429
    );
    ok(admin_at(db, &["user", "unlock", "bob"], ""), "unlock");
    assert_eq!(
        sign_in(&app, &app.client(), "bob", "bob-password")
            .await
            .status(),
        303
    );

    // A new password ends the sessions; only the new password signs in.
    let r = sign_in(&app, &app.client(), "bob", "bob-password").await;
    let bob_cookie = session_cookie(&r).unwrap();
    ok(
        admin_at(db, &["user", "set-password", "bob"], "bob-new-password\n"),
        "set-password",
    );
    assert!(!cookie_works(&app, &bob_cookie).await);
    assert_eq!(
        sign_in(&app, &app.client(), "bob", "bob-password")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&app, &app.client(), "bob", "bob-new-password")
            .await
            .status(),
        303
    );

    ok(admin_at(db, &["user", "delete", "bob"], ""), "delete");
    refused_with(
        admin_at(db, &["user", "show", "bob"], ""),
        "show deleted",
        "no user bob",
    );
    refused_with(
        admin_at(db, &["user", "add", "bob"], "bob-password\n"),
        "a deleted name stays retired",
        "taken",
    );
    // Each command left its trail in the shared database.
    let audit = ok(
        admin_at(db, &["audit", "--event", "admin.user.delete"], ""),
        "audit",
    );
    assert!(audit.stdout.contains("\tbob\t"), "{audit:?}");
    refused_with(
        admin_at(db, &["db", "backup", "/tmp/never-written"], ""),
        "backup",
        "pg_dump",
    );
}

/// A SQLite site built through the binary and its server: users, a group, sessions, audit.
struct SqliteSite {
    app: TestApp,
    /// Bob's session cookie, signed in on the SQLite server.
    bob_cookie: String,
}

async fn sqlite_site() -> SqliteSite {
    let app = TestApp::spawn(&[]);
    app.admin_ok(
        &["user", "add", "alice", "--email", "Alice@Example.org"],
        "alice-password\n",
    );
    app.admin_ok(&["user", "add", "bob"], "bob-password\n");
    app.admin_ok(&["user", "add", "gone"], "gone-password\n");
    app.admin_ok(&["user", "group", "add", "alice", "staff"], "");
    assert_eq!(
        sign_in(&app, &app.client(), "alice", "alice-password")
            .await
            .status(),
        303
    );
    let r = sign_in(&app, &app.client(), "bob", "bob-password").await;
    let bob_cookie = session_cookie(&r).unwrap();
    assert_eq!(
        sign_in(&app, &app.client(), "alice", "wrong-password")
            .await
            .status(),
        401
    );
    app.admin_ok(&["user", "delete", "gone"], "");
    app.audit_rows(|rows| rows.iter().any(|r| r.is("sign_in", "failed", "alice")))
        .await;
    SqliteSite { app, bob_cookie }
}

#[tokio::test]
async fn db_copy_moves_a_sqlite_site_to_postgresql_whole() {
    let mut site = sqlite_site().await;
    let source = site.app.database();
    // The server must be stopped: its lock is taken for the copy.
    let url = fresh_pg_database();
    refused_with(
        admin_at(&source, &["db", "copy", "--to", &url], ""),
        "while the server runs",
        "stop it first",
    );
    site.app.stop();
    let audit_before: i64 = site
        .app
        .db()
        .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    let run = ok(
        admin_at(&source, &["db", "copy", "--to", &url], ""),
        "db copy",
    );
    for line in [
        "users: 2",
        "sessions: 2",
        "user_groups: 1",
        "retired_usernames: 1",
        "meta: 1",
    ] {
        assert!(run.stdout.lines().any(|l| l == line), "{line}: {run:?}");
    }
    assert!(
        run.stdout
            .lines()
            .any(|l| l == format!("audit_events: {audit_before}")),
        "{run:?}"
    );

    // The same key as the SQLite server (its key file beside the database).
    let key = std::fs::read(site.app.dir.path().join("gatehouse.key")).unwrap();
    let pg = TestApp::spawn_pg(&url, &hex::encode(key), &[]);
    assert!(
        cookie_works(&pg, &site.bob_cookie).await,
        "a session from SQLite"
    );
    let c = pg.client();
    assert_eq!(
        sign_in(&pg, &c, "alice", "alice-password").await.status(),
        303
    );
    assert_eq!(
        sign_in(&pg, &pg.client(), "gone", "gone-password")
            .await
            .status(),
        401
    );
    let show = ok(
        admin_at(Path::new(&url), &["user", "show", "alice"], ""),
        "user show",
    );
    assert!(show.stdout.contains("groups: staff"), "{show:?}");
    assert!(show.stdout.contains("Alice@Example.org"), "{show:?}");
    // The address's uniqueness ignores case on PostgreSQL too.
    refused_with(
        admin_at(
            Path::new(&url),
            &["user", "add", "carol", "--email", "alice@EXAMPLE.org"],
            "carol-password\n",
        ),
        "same address",
        "email is taken",
    );
    refused_with(
        admin_at(Path::new(&url), &["user", "add", "gone"], "gone-password\n"),
        "retired name",
        "taken",
    );
    // The trail came along, and says where the database came from.
    let audit = ok(admin_at(Path::new(&url), &["audit"], ""), "audit");
    for expected in [
        "sign_in\tfailed\talice",
        "sign_in\tok\tbob",
        "admin.user.delete\tok\tgone",
        "admin.db.copy\tok",
    ] {
        assert!(audit.stdout.contains(expected), "{expected}: {audit:?}");
    }
    // New rows take new ids: no user inherits the deleted one's (id 3) trail.
    ok(
        admin_at(Path::new(&url), &["user", "add", "dave"], "dave-password\n"),
        "user add",
    );
    assert_eq!(
        pg_number(&url, "SELECT id FROM users WHERE username = 'dave'"),
        4
    );
    let check = ok(admin_at(Path::new(&url), &["db", "check"], ""), "db check");
    assert!(check.stdout.contains("integrity: ok"), "{check:?}");
}

#[tokio::test]
async fn db_copy_refuses_a_target_that_holds_rows() {
    let mut site = sqlite_site().await;
    site.app.stop();
    let source = site.app.database();
    let url = fresh_pg_database();
    ok(
        admin_at(&source, &["db", "copy", "--to", &url], ""),
        "first copy",
    );
    let users = pg_number(&url, "SELECT count(*) FROM users");
    let audit = pg_number(&url, "SELECT count(*) FROM audit_events");
    refused_with(
        admin_at(&source, &["db", "copy", "--to", &url], ""),
        "second copy",
        "is not empty",
    );
    assert_eq!(pg_number(&url, "SELECT count(*) FROM users"), users);
    assert_eq!(pg_number(&url, "SELECT count(*) FROM audit_events"), audit);
    // Not even a single row of a table elsewhere: a fresh database with one meta row.
    let other = fresh_pg_database();
    ok(admin_at(Path::new(&other), &["db", "check"], ""), "check");
    ok(
        admin_at(Path::new(&other), &["user", "list"], ""),
        "creates the schema",
    );
    pg_execute(&other, "INSERT INTO meta VALUES ('note', 'x')");
    refused_with(
        admin_at(&source, &["db", "copy", "--to", &other], ""),
        "meta has a row",
        "meta",
    );
    assert_eq!(pg_number(&other, "SELECT count(*) FROM users"), 0);
    // Nonsense targets and sources.
    refused_with(
        admin_at(&source, &["db", "copy", "--to", "/tmp/x.db"], ""),
        "a file target",
        "PostgreSQL URL",
    );
    refused_with(
        admin_at(Path::new(&url), &["db", "copy", "--to", &other], ""),
        "a PostgreSQL source",
        "SQLite",
    );
}

#[tokio::test]
async fn db_copy_refuses_a_source_with_a_table_it_does_not_know() {
    let mut site = sqlite_site().await;
    site.app.stop();
    let source = site.app.database();
    rusqlite::Connection::open(&source)
        .unwrap()
        .execute_batch("CREATE TABLE passkey_notes (id INTEGER PRIMARY KEY, credential BLOB)")
        .unwrap();
    let url = fresh_pg_database();
    let run = admin_at(&source, &["db", "copy", "--to", &url], "");
    refused_with(run, "unknown table", "passkey_notes");
    // Nothing written: not a row, not even the schema.
    assert_eq!(
        pg_number(
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        0
    );
}

#[tokio::test]
async fn db_check_reports_on_both_backends() {
    // SQLite.
    let app = TestApp::spawn(&[]);
    app.admin_ok(&["user", "add", "alice"], "alice-password\n");
    let run = app.admin_ok(&["db", "check"], "");
    for line in [
        "integrity: ok",
        "schema version: 7 (current",
        "users: 1",
        "sessions: 0",
    ] {
        assert!(run.stdout.contains(line), "{line}: {run:?}");
    }
    assert!(run.stdout.contains("key fingerprint: "), "{run:?}");

    // PostgreSQL: a database nothing has used yet is reported, not created.
    let url = fresh_pg_database();
    let db = Path::new(&url);
    let run = ok(admin_at(db, &["db", "check"], ""), "fresh");
    assert!(run.stdout.contains("schema version: 0 (older"), "{run:?}");
    assert_eq!(
        pg_number(
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        0,
        "a check creates nothing"
    );
    ok(
        admin_at(db, &["user", "add", "alice"], "alice-password\n"),
        "add",
    );
    let run = ok(admin_at(db, &["db", "check"], ""), "check");
    for line in [
        "integrity: ok",
        "schema version: 8 (current",
        "users: 1",
        "key fingerprint: none yet",
    ] {
        assert!(run.stdout.contains(line), "{line}: {run:?}");
    }
    // Damage a restore without constraints could leave: named, exit 1.
    pg_execute(
        &url,
        "ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
         INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
         VALUES (decode(repeat('ab', 32), 'hex'), 999, 1, 1, 2);",
    );
    let run = admin_at(db, &["db", "check"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("integrity: 1 problem(s)"), "{run:?}");
    assert!(
        run.stdout
            .contains("sessions: 1 row(s) point at a missing user"),
        "{run:?}"
    );
}

#[tokio::test]
async fn key_rotate_on_postgresql_moves_the_site_to_the_new_key() {
    let url = fresh_pg_database();
    let db = Path::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let old = key_file(dir.path(), "old.key", 1);
    let new = key_file(dir.path(), "new.key", 2);
    let wrong = key_file(dir.path(), "wrong.key", 3);
    ok(
        admin_at(db, &["user", "add", "alice"], "alice-password\n"),
        "add",
    );
    let mut app = TestApp::spawn_pg(&url, &hex::encode([1u8; 32]), &[]);
    let r = sign_in(&app, &app.client(), "alice", "alice-password").await;
    let cookie = session_cookie(&r).unwrap();
    app.stop();
    // Mail waiting in the outbox, sealed under the old key.
    let sink = SmtpSink::start();
    queue_mail(
        db,
        sink.port,
        "carol@example.org",
        &[("GATEHOUSE_SECRET_KEY", &hex::encode([1u8; 32]))],
    );

    refused_with(
        admin_at(
            db,
            &[
                "key",
                "rotate",
                "--secret-key-file",
                &new,
                "--old-secret-key-file",
                &wrong,
            ],
            "",
        ),
        "a wrong old key",
        "is not the one this database was used with",
    );
    refused_with(
        admin_at(db, &["key", "rotate", "--old-secret-key-file", &old], ""),
        "no new key given",
        "GATEHOUSE_SECRET_KEY",
    );
    let run = ok(
        admin_with_env(
            db,
            &[
                ("GATEHOUSE_OLD_SECRET_KEY", &hex::encode([1u8; 32])),
                ("GATEHOUSE_SECRET_KEY", &hex::encode([2u8; 32])),
            ],
            &["key", "rotate"],
            "",
        ),
        "key rotate",
    );
    assert!(run.stderr.contains("1 queued mail re-sealed"), "{run:?}");

    // The old key is refused now, the new one serves, and sessions survive the change.
    let refusal = serve_with_args_expecting_exit(
        &["--database", &url, "--secret-key-file", &old],
        Duration::from_secs(30),
    )
    .expect("a server with the old key exits");
    assert_ne!(refusal.code, 0);
    assert!(refusal.stderr.contains("key rotate"), "{refusal:?}");
    let flags = mail_flags(sink.port);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let app = TestApp::spawn_pg(&url, &hex::encode([2u8; 32]), &flags);
    assert!(cookie_works(&app, &cookie).await);
    // The queued mail opens under the new key: it is sent, not discarded.
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1, "{mail:?}; log:\n{}", app.log());
    assert_eq!(mail[0].to, "carol@example.org");
    assert_eq!(
        sign_in(&app, &app.client(), "alice", "alice-password")
            .await
            .status(),
        303
    );
    let audit = ok(
        admin_at(db, &["audit", "--event", "admin.key.rotate"], ""),
        "audit",
    );
    assert!(audit.stdout.contains("admin.key.rotate\tok"), "{audit:?}");
    assert!(
        audit.stdout.contains("admin.key.rotate\trefused"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn key_rotate_on_sqlite_makes_a_new_key_and_refuses_a_running_server() {
    let mut app = TestApp::spawn(&[]);
    app.admin_ok(&["user", "add", "alice"], "alice-password\n");
    let r = sign_in(&app, &app.client(), "alice", "alice-password").await;
    let cookie = session_cookie(&r).unwrap();
    let key = app.dir.path().join("gatehouse.key");
    let old = app.dir.path().join("old.key");
    let old_arg = old.to_str().unwrap().to_owned();
    std::fs::copy(&key, &old).unwrap();
    let rotate = ["key", "rotate", "--old-secret-key-file", &old_arg];
    refused_with(app.admin(&rotate, ""), "server running", "stop it first");
    app.stop();
    refused_with(app.admin(&rotate, ""), "same key", "are the same");
    let sink = SmtpSink::start();
    queue_mail(&app.database(), sink.port, "carol@example.org", &[]);
    // The usual way: the old key moved aside, a new one made where the server looks.
    std::fs::remove_file(&key).unwrap();
    let run = app.admin_ok(&rotate, "");
    assert!(run.stderr.contains("created a new secret key"), "{run:?}");
    assert!(run.stderr.contains("1 queued mail re-sealed"), "{run:?}");
    assert!(key.exists());
    assert_ne!(std::fs::read(&key).unwrap(), std::fs::read(&old).unwrap());
    let run = app.admin_ok(&rotate, "");
    assert!(run.stderr.contains("nothing to rotate"), "{run:?}");

    let refusal = serve_with_args_expecting_exit(
        &[
            "--database",
            app.database().to_str().unwrap(),
            "--secret-key-file",
            &old_arg,
        ],
        Duration::from_secs(30),
    )
    .expect("a server with the old key exits");
    assert_ne!(refusal.code, 0);
    let flags = mail_flags(sink.port);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    app.restart_with(&flags);
    assert!(cookie_works(&app, &cookie).await);
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1, "{mail:?}; log:\n{}", app.log());
    assert_eq!(mail[0].to, "carol@example.org");
}
