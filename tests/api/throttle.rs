//! The per-address limits: failure throttle and KDF budget, with trusted-proxy handling.

use serde_json::json;

use crate::both_backends;
use crate::common::*;

both_backends!(
    an_address_past_its_failures_gets_429_for_every_username,
    taken_usernames_and_locked_attempts_count_too,
    behind_a_trusted_proxy_each_client_has_its_own_count,
    the_kdf_budget_limits_valid_sign_ins_and_sign_ups_under_contention,
    a_parallel_burst_of_wrong_sign_ins_gets_no_more_guesses_than_the_address_limit,
    right_passwords_give_their_reservation_back,
    a_parallel_burst_of_wrong_current_passwords_is_held_to_the_address_limit,
);

async fn api_sign_in(
    app: &TestApp,
    user: &str,
    password: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client()
        .post(app.url("/api/session"))
        .json(&json!({"username": user, "password": password}));
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

async fn an_address_past_its_failures_gets_429_for_every_username(b: Backend) {
    let app = TestApp::spawn_on(b, &["--ip-failures", "4", "--ip-window", "2s"]);
    sign_up(&app, &app.client(), "owner", "owner-password").await;
    for user in ["a_one", "a_two", "a_three", "a_four"] {
        assert_eq!(
            api_sign_in(&app, user, "guess-guess", None).await.status(),
            401
        );
    }
    let r = api_sign_in(&app, "owner", "owner-password", None).await;
    assert_eq!(
        r.status(),
        429,
        "even the right password, for another username"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));
    // The HTML form says the same.
    let c = app.client();
    let r = sign_in(&app, &c, "owner", "owner-password").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many attempts from your network")
    );
    // No username record was touched: after the window the owner signs in at once.
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    assert_eq!(
        api_sign_in(&app, "owner", "owner-password", None)
            .await
            .status(),
        204
    );
}

async fn taken_usernames_and_locked_attempts_count_too(b: Backend) {
    let app = TestApp::spawn_on(b, &["--ip-failures", "5"]);
    let c = app.client();
    sign_up(&app, &c, "popular", "popular-password").await;
    for _ in 0..2 {
        let r = c
            .post(app.url("/api/users"))
            .json(&json!({"username": "popular", "password": "another-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
    }
    // Three failures lock "target"; that was 5 failures for the address in all.
    for _ in 0..3 {
        assert_eq!(
            api_sign_in(&app, "target", "guess-guess", None)
                .await
                .status(),
            401
        );
    }
    let r = api_sign_in(&app, "someone", "guess-guess", None).await;
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("network"),
        "{body}"
    );
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let app = TestApp::spawn(&["--ip-failures", "3"]);
    for (i, user) in ["s_one", "s_two", "s_three"].iter().enumerate() {
        let spoof = format!("203.0.113.{i}");
        assert_eq!(
            api_sign_in(&app, user, "guess-guess", Some(&spoof))
                .await
                .status(),
            401
        );
    }
    let r = api_sign_in(&app, "s_four", "guess-guess", Some("198.51.100.77")).await;
    assert_eq!(r.status(), 429, "all counted against the real peer");
    assert!(
        app.log_contains("not in --trusted-proxies").await,
        "operator warned once"
    );
    assert_eq!(app.log().matches("not in --trusted-proxies").count(), 1);
}

async fn behind_a_trusted_proxy_each_client_has_its_own_count(b: Backend) {
    let app = TestApp::spawn_on(
        b,
        &["--ip-failures", "3", "--trusted-proxies", "127.0.0.1/32"],
    );
    for user in ["t_one", "t_two", "t_three"] {
        // The right-most untrusted entry is the client; a forged left part is ignored.
        assert_eq!(
            api_sign_in(&app, user, "guess-guess", Some("6.6.6.6, 203.0.113.5"))
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        api_sign_in(&app, "t_four", "guess-guess", Some("1.1.1.1, 203.0.113.5"))
            .await
            .status(),
        429
    );
    assert_eq!(
        api_sign_in(&app, "t_four", "guess-guess", Some("203.0.113.6"))
            .await
            .status(),
        401,
        "another client"
    );
    // Sessions record the forwarded client address.
    sign_up(&app, &app.client(), "proxied", "proxied-password").await;
    let r = app
        .client()
        .post(app.url("/api/session"))
        .header("x-forwarded-for", "192.0.2.44")
        .json(&json!({"username": "proxied", "password": "proxied-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let ip = app.query_text("SELECT ip FROM sessions ORDER BY id DESC LIMIT 1");
    assert_eq!(ip.as_deref(), Some("192.0.2.44"));
}

async fn the_kdf_budget_limits_valid_sign_ins_and_sign_ups_under_contention(b: Backend) {
    // Real costs and one KDF thread, so concurrent requests queue up (contention).
    let app = TestApp::spawn_on(
        b,
        &[
            "--ip-kdf-rate",
            "4",
            "--ip-failures",
            "0",
            "--argon2-m",
            "19456",
            "--argon2-t",
            "2",
            "--kdf-threads",
            "1",
        ],
    );
    // Sequential use on an idle pool is never refused, however much.
    sign_up(&app, &app.client(), "budget", "budget-password").await;
    for _ in 0..6 {
        assert_eq!(
            api_sign_in(&app, "budget", "budget-password", None)
                .await
                .status(),
            204
        );
    }
    // A burst of valid sign-ins from one address: past its budget, 429 while others queue.
    let statuses: Vec<(u16, Option<String>)> =
        futures_util::future::join_all((0..12).map(|_| async {
            let r = api_sign_in(&app, "budget", "budget-password", None).await;
            (
                r.status().as_u16(),
                r.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }))
        .await;
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!refused.is_empty(), "{statuses:?}");
    assert!(
        refused.iter().all(|(_, r)| r.is_some()),
        "Retry-After on every 429"
    );
    assert!(
        statuses.iter().all(|(s, _)| *s == 204 || *s == 429),
        "{statuses:?}"
    );
    // The same for a burst of sign-ups.
    let c = app.client();
    let statuses: Vec<u16> = futures_util::future::join_all((0..12).map(|i| {
        let c = c.clone();
        let url = app.url("/api/users");
        async move {
            c.post(url)
                .json(&json!({"username": format!("burst_{i}"), "password": "burst-password"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn zero_turns_the_address_limits_off() {
    let app = TestApp::spawn(&[
        "--ip-failures",
        "0",
        "--ip-kdf-rate",
        "0",
        "--lock-attempts",
        "1000",
    ]);
    for i in 0..40 {
        let r = api_sign_in(&app, &format!("zero{i}"), "guess-guess", None).await;
        assert_eq!(r.status(), 401);
    }
}

/// Password checks run by the server so far: the KDF jobs it started (the wait histogram
/// observes one per job).
async fn kdf_runs(app: &TestApp) -> f64 {
    let text = scrape_metrics(app).await;
    metric_value(&text, "gatehouse_kdf_wait_seconds_count", &[]).unwrap_or(0.0)
}

/// An address limit of 10, the lock and KDF budget out of the way, metrics on.
const TEN_PER_ADDRESS: &[&str] = &[
    "--ip-failures",
    "10",
    "--ip-kdf-rate",
    "0",
    "--lock-attempts",
    "1000",
    "--metrics-bind",
    "127.0.0.1:0",
];

async fn a_parallel_burst_of_wrong_sign_ins_gets_no_more_guesses_than_the_address_limit(
    b: Backend,
) {
    let app = TestApp::spawn_on(b, TEN_PER_ADDRESS);
    let before = kdf_runs(&app).await;
    // 80 at once: distinct usernames, so only the address limit can stop them.
    let statuses: Vec<u16> = futures_util::future::join_all((0..80).map(|i| {
        let app = &app;
        async move {
            api_sign_in(app, &format!("burst_{i}"), "guess-guess", None)
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    let guessed = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(
        guessed, 10,
        "exactly the limit reach a password check: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        kdf_runs(&app).await - before,
        10.0,
        "no more KDF runs than that"
    );
    // The same for the HTML form: the address is spent.
    let r = sign_in(&app, &app.client(), "late_one", "guess-guess").await;
    assert_eq!(r.status(), 429);
}

async fn right_passwords_give_their_reservation_back(b: Backend) {
    let app = TestApp::spawn_on(b, &["--ip-failures", "3", "--ip-kdf-rate", "0"]);
    sign_up(&app, &app.client(), "regular", "regular-password").await;
    // Each check reserves a failure first; the right ones give it back.
    for password in ["wrong-password", "regular-password", "wrong-password"]
        .into_iter()
        .chain(std::iter::repeat_n("regular-password", 10))
    {
        let r = api_sign_in(&app, "regular", password, None).await;
        assert_ne!(r.status(), 429, "{password}");
    }
    // Two failures counted: one left for the address, then it is spent.
    assert_eq!(
        api_sign_in(&app, "someone", "guess-guess", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        api_sign_in(&app, "regular", "regular-password", None)
            .await
            .status(),
        429
    );
}

async fn a_parallel_burst_of_wrong_current_passwords_is_held_to_the_address_limit(b: Backend) {
    let app = TestApp::spawn_on(b, TEN_PER_ADDRESS);
    let owner = app.client();
    sign_up(&app, &owner, "changer", "changer-password").await;
    let token = csrf_token(&app, &owner, "/account").await;
    let before = kdf_runs(&app).await;
    let statuses: Vec<u16> = futures_util::future::join_all((0..60).map(|_| {
        let (app, owner, token) = (&app, &owner, &token);
        async move {
            post_form(
                app,
                owner,
                "/account/password",
                token,
                &[
                    ("current_password", "not-my-password"),
                    ("new_password", "another-password"),
                    ("new_password_repeat", "another-password"),
                ],
            )
            .await
            .status()
            .as_u16()
        }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(kdf_runs(&app).await - before, 10.0);
}
