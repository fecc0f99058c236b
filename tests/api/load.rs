//! The KDF pool under load: a full queue is a 503 with `Retry-After`, page serving goes on
//! while Argon2 is busy, and the lock table refuses new names when full (docs/behaviour.md §3, §4).

use crate::common::*;

/// Real-ish costs so one hash takes tens of milliseconds.
const SLOW_KDF: &[&str] = &[
    "--argon2-m",
    "19456",
    "--argon2-t",
    "3",
    "--kdf-threads",
    "1",
];

async fn sign_in_burst(
    app: &TestApp,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(u16, Option<String>)>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let c = app.client();
        let token = csrf_token(app, &c, "/sign-in").await;
        let url = app.url("/sign-in");
        tasks.push(tokio::spawn(async move {
            let user = format!("burst{i}");
            let r = c
                .post(url)
                .form(&[
                    ("username", user.as_str()),
                    ("password", "guess-guess"),
                    ("csrf_token", &token),
                ])
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry)
        }));
    }
    tasks
}

#[tokio::test]
async fn a_full_kdf_queue_answers_503_with_retry_after() {
    let mut args = SLOW_KDF.to_vec();
    args.extend(["--kdf-queue", "1"]);
    let app = TestApp::spawn(&args);
    let mut results = Vec::new();
    for t in sign_in_burst(&app, 12).await {
        results.push(t.await.unwrap());
    }
    let busy: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "{results:?}");
    assert!(busy.iter().all(|(_, retry)| {
        retry
            .as_deref()
            .is_some_and(|r| r.parse::<u64>().unwrap() >= 1)
    }));
    assert!(
        results.iter().all(|(s, _)| *s == 401 || *s == 503),
        "{results:?}"
    );
    // Refused attempts did not count toward anyone's lock: the KDF never ran for them.
    let c = app.client();
    for (i, (s, _)) in results.iter().enumerate() {
        if *s == 503 {
            let r = sign_in(&app, &c, &format!("burst{i}"), "guess-guess").await;
            assert_eq!(r.status(), 401);
            break;
        }
    }
}

#[tokio::test]
async fn pages_are_served_while_the_kdf_is_busy() {
    let app = TestApp::spawn(SLOW_KDF);
    let burst = sign_in_burst(&app, 16).await;
    // Started after the burst was queued; answered long before the queue drains.
    let c = app.client();
    for path in ["/sign-in", "/healthz", "/sign-up"] {
        assert!(
            c.get(app.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
    let unfinished = burst.iter().filter(|t| !t.is_finished()).count();
    assert!(
        unfinished > 0,
        "the pages were answered while sign-ins still waited for the KDF"
    );
    for t in burst {
        assert_eq!(t.await.unwrap().0, 401);
    }
}

#[tokio::test]
async fn a_full_lock_table_refuses_new_names_but_keeps_locks() {
    let app = TestApp::spawn(&["--lock-max-entries", "3"]);
    let c = app.client();
    for _ in 0..3 {
        sign_in(&app, &c, "victim", "guess-guess").await;
    }
    assert_eq!(
        sign_in(&app, &c, "other1", "guess-guess").await.status(),
        401
    );
    assert_eq!(
        sign_in(&app, &c, "other2", "guess-guess").await.status(),
        401
    );
    let r = sign_in(&app, &c, "other3", "guess-guess").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        sign_in(&app, &c, "victim", "guess-guess").await.status(),
        429,
        "live lock kept"
    );
}

#[tokio::test]
async fn default_paths_create_the_database_and_key_in_the_working_directory() {
    let app = TestApp::spawn_with_default_paths();
    sign_up(&app, &app.client(), "defaulty", "default-password").await;
    assert!(app.dir.path().join("users.database").exists());
    assert!(app.dir.path().join("gatehouse.key").exists());
    let n: i64 = app
        .db()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}
