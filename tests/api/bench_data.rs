//! The hidden benchmark helpers: `bench-data` makes users whose sessions and sign-ins work on
//! a real server, and refuses a database with real users; `bench-kdf` prints a rate.

use crate::common::*;

#[tokio::test]
async fn bench_data_sessions_and_sign_in_bodies_work_on_a_real_server() {
    let mut app = TestApp::spawn(&[]);
    app.stop();
    let (cookies, bodies) = (
        app.dir.path().join("cookies"),
        app.dir.path().join("bodies"),
    );
    let run = app.admin_ok(
        &[
            "bench-data",
            "--users",
            "300",
            "--sessions",
            "200",
            "--sign-in-users",
            "4",
            "--sample-cookies",
            cookies.to_str().unwrap(),
            "--sign-in-bodies",
            bodies.to_str().unwrap(),
        ],
        "",
    );
    assert!(run.stdout.contains("username=bench0"), "{run:?}");
    app.restart_with(&["--session-idle", "24h", "--session-max", "30d"]);
    let db = app.db();
    let (users, sessions): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM sessions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((users, sessions), (300, 200));
    let cookies = std::fs::read_to_string(&cookies).unwrap();
    assert_eq!(cookies.lines().count(), 200);
    for cookie in cookies.lines().step_by(50) {
        let (c, header) = with_cookie(cookie);
        let r = c
            .get(app.url("/api/me"))
            .header("cookie", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "bench session {cookie}");
    }
    let bodies = std::fs::read_to_string(&bodies).unwrap();
    assert_eq!(bodies.lines().count(), 4);
    for body in bodies.lines() {
        let c = app.client();
        let token = csrf_token(&app, &c, "/sign-in").await;
        let r = c
            .post(app.url("/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("{body}&csrf_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{body}");
    }
    // A filler user shares bench0's hash, so it cannot sign in with the bench password.
    assert_eq!(
        sign_in(&app, &app.client(), "bench250", "bench-password")
            .await
            .status(),
        401
    );
    let rate = app.admin_ok(&["bench-kdf", "--threads", "1", "--seconds", "0.2"], "");
    assert!(rate.stdout.trim().parse::<f64>().unwrap() > 0.0, "{rate:?}");
}

#[tokio::test]
async fn bench_data_refuses_a_database_with_real_users() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "real_user", "real-password").await;
    let run = app.admin(&["bench-data", "--users", "10"], "");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("real users"), "{run:?}");
}

#[test]
fn bench_data_reports_its_progress_on_stderr_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.database");
    let run = admin_at(
        &db,
        &["bench-data", "--users", "50000", "--sign-in-users", "3"],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("bench-data: "))
        .collect();
    assert!(
        progress
            .first()
            .is_some_and(|l| l.starts_with("bench-data: 0/50000 users written")),
        "{run:?}"
    );
    assert!(
        progress
            .last()
            .is_some_and(|l| l.starts_with("bench-data: 50000/50000 users written (100%")),
        "{run:?}"
    );
    // Progress goes to stderr: stdout stays the machine-readable key=value lines.
    assert!(!run.stdout.contains("bench-data:"), "{run:?}");
    assert!(run.stdout.starts_with("username=bench0"), "{run:?}");
}
