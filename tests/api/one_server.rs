//! One server per SQLite file (issue 10 §2): a second `gatehouse serve` on the same database
//! refuses to start while admin commands keep working; the lock dies with its process; and
//! processes starting together on a fresh file all get a working database.

use std::time::Duration;

use crate::common::*;

/// Long enough for a debug build to start on a loaded machine; a refusal comes far sooner.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A second server on `app`'s database exits 1 with the message naming the lock file.
fn assert_second_server_refused(app: &TestApp) {
    let db = app.database();
    let run = serve_expecting_exit(&db, START_LIMIT)
        .unwrap_or_else(|| panic!("a second server started on {}", db.display()));
    assert_eq!(run.code, 1, "{run:?}");
    let lock = beside(&db, ".lock").display().to_string();
    let message = format!(
        "another Gatehouse server (pid {}) is running on the database {} (it holds the lock {lock})",
        app.pid().unwrap(),
        db.display()
    );
    assert!(run.stderr.contains(&message), "{message}\n{run:?}");
    assert!(!run.stderr.contains("listening on"), "{run:?}");
}

#[tokio::test]
async fn a_second_server_is_refused_while_the_first_serves_and_admin_commands_work() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "first", "first-password").await;

    assert_second_server_refused(&app);

    // The first one is untouched and the admin commands work beside it.
    assert_eq!(
        sign_in(&app, &app.client(), "first", "first-password")
            .await
            .status(),
        303
    );
    app.admin_ok(&["user", "add", "second"], "second-password\n");
    let list = app.admin_ok(&["user", "list"], "");
    assert!(
        list.stdout.contains("first") && list.stdout.contains("second"),
        "{list:?}"
    );
    app.admin_ok(&["db", "check"], "");
    assert_eq!(
        sign_in(&app, &app.client(), "second", "second-password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_sigkilled_server_leaves_no_stale_lock() {
    let mut app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "survivor", "survivor-password").await;
    // `restart` is SIGKILL, then a new server on the same database and port.
    app.restart();
    assert_eq!(
        sign_in(&app, &app.client(), "survivor", "survivor-password")
            .await
            .status(),
        303
    );
    // And the new one holds the lock in turn.
    assert_second_server_refused(&app);
}

#[test]
fn admin_commands_starting_together_on_a_fresh_file_all_succeed() {
    for round in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("users.database");
        let runs: Vec<AdminRun> = std::thread::scope(|s| {
            let jobs: Vec<_> = (0..3)
                .map(|i| {
                    let db = &db;
                    s.spawn(move || {
                        admin_at(
                            db,
                            &["user", "add", &format!("user{i}")],
                            "racer-password\n",
                        )
                    })
                })
                .collect();
            jobs.into_iter().map(|j| j.join().unwrap()).collect()
        });
        for run in &runs {
            assert_eq!(run.code, 0, "round {round}: {run:?}");
        }
        let list = admin_at(&db, &["user", "list"], "");
        for i in 0..3 {
            assert!(list.stdout.contains(&format!("user{i}")), "{list:?}");
        }
    }
}

#[tokio::test]
async fn a_server_and_an_admin_command_starting_together_on_a_fresh_file_both_succeed() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("users.database");
        let adder = {
            let db = db.clone();
            std::thread::spawn(move || admin_at(&db, &["user", "add", "early"], "early-password\n"))
        };
        let app = TestApp::spawn_in(dir, &[]);
        let run = adder.join().unwrap();
        assert_eq!(run.code, 0, "{run:?}\nserver log:\n{}", app.log());
        assert!(!app.log().contains("already exists"), "{}", app.log());
        assert_eq!(
            sign_in(&app, &app.client(), "early", "early-password")
                .await
                .status(),
            303
        );
    }
}
