//! `gatehouse import-seed`: users of the original FastAPI demo keep their passwords.

use std::process::Command;

use crate::common::*;

/// Builds a demo database with the suite's script, the way the demo does.
fn demo_database(dir: &std::path::Path, rows: &[&str]) -> std::path::PathBuf {
    let path = dir.join("demo-users.database");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/demo_users_database.py"
    );
    let status = Command::new("python3")
        .arg(script)
        .arg(&path)
        .args(rows)
        .status()
        .expect("python3 runs the demo database script");
    assert!(status.success());
    path
}

#[tokio::test]
async fn demo_users_sign_in_with_their_old_passwords_while_the_server_runs() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "taken_name", "site-password").await;
    let seed = demo_database(
        app.dir.path(),
        &[
            "alice:correct horse battery staple",
            "bob_42:hunter2hunter2",
            "Capital:capital-password",
            "taken_name:demo-password",
            "x:too-short-name",
            "broken=$1$not-base64$",
        ],
    );
    let run = app.admin_ok(&["import-seed", seed.to_str().unwrap()], "");
    assert!(
        run.stderr
            .contains("2 imported, 1 already existed, 3 skipped"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("skipped \"Capital\": not canonical"),
        "{run:?}"
    );
    assert!(run.stderr.contains("skipped \"x\""), "{run:?}");
    assert!(run.stderr.contains("skipped \"broken\""), "{run:?}");
    assert!(
        run.stderr
            .contains("skipped \"taken_name\": a user with that name exists")
    );

    // Plain-password form (the server digests) and the docs/behaviour.md §2 digest vector both
    // work.
    let c = app.client();
    assert_eq!(
        sign_in(&app, &c, "bob_42", "hunter2hunter2").await.status(),
        303
    );
    let r = submit_form(&app, &c, "/sign-in", "/sign-in",
        &[
            ("username", "alice"),
            (
                "password_digest",
                "qfHFJMsdCQvQ1SBaXfnadH82UaLiL6vuRP1Pc3S1eotaTmbLir/Tklt5LD8FtCL71N2LTzfdtyr7oZmONwduEQ==",
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        sign_in(&app, &app.client(), "alice", "wrong-password")
            .await
            .status(),
        401
    );
    // The existing user kept their own password.
    assert_eq!(
        sign_in(&app, &app.client(), "taken_name", "site-password")
            .await
            .status(),
        303
    );
    assert_eq!(
        sign_in(&app, &app.client(), "taken_name", "demo-password")
            .await
            .status(),
        401
    );

    // Stored as Argon2id, never the demo's digest.
    let db = app.db();
    let hashes: Vec<String> = db
        .prepare("SELECT password_hash FROM users")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(hashes.iter().all(|h| h.starts_with("$argon2id$")));
    assert!(!hashes.iter().any(|h| h.contains("qfHFJMsdCQvQ1SBa")));

    // Importing again changes nothing.
    let run = app.admin_ok(&["import-seed", seed.to_str().unwrap()], "");
    assert!(
        run.stderr.contains("0 imported, 3 already existed"),
        "{run:?}"
    );
    let rows = app
        .audit_rows(|r| r.iter().filter(|r| r.event == "admin.import_seed").count() == 2)
        .await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.event == "admin.import_seed")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_file_without_the_demo_table_is_refused() {
    let app = TestApp::spawn(&[]);
    let not_demo = app.dir.path().join("other.database");
    rusqlite::Connection::open(&not_demo)
        .unwrap()
        .execute("CREATE TABLE things (x)", [])
        .unwrap();
    let run = app.admin(&["import-seed", not_demo.to_str().unwrap()], "");
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("users(id, username, password_hash)"),
        "{run:?}"
    );
    let run = app.admin(&["import-seed", "/nonexistent/demo.database"], "");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no file"), "{run:?}");
}

#[test]
fn import_seed_reports_its_progress_on_stderr_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..300)
        .map(|n| format!("seed_user{n}:password-{n}"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let seed = demo_database(dir.path(), &rows);
    let db = dir.path().join("users.database");
    let run = admin_at(&db, &["import-seed", seed.to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{run:?}");
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("import-seed: "))
        .collect();
    assert!(
        progress
            .first()
            .is_some_and(|l| l.starts_with("import-seed: 0/300 users hashed")),
        "{run:?}"
    );
    assert!(
        progress
            .last()
            .is_some_and(|l| l.starts_with("import-seed: 300/300 users hashed (100%")),
        "{run:?}"
    );
    assert!(run.stderr.contains("300 imported"), "{run:?}");
}
