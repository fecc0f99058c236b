//! Sign-in failures and the fail-lock (docs/behaviour.md §3, §4).

use std::time::Duration;

use crate::both_backends;
use crate::common::*;

both_backends!(
    a_disabled_user_gets_the_generic_401,
    three_strikes_lock_even_the_right_password_until_the_window_passes,
    attempts_while_locked_extend_the_lock,
    success_before_the_lock_clears_the_count,
    unknown_usernames_lock_too_and_parallel_guesses_all_count,
    lock_attempts_are_configurable,
);

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "known", "known-password").await;
    let anon = app.client();
    let wrong = sign_in(&app, &anon, "known", "wrong-password").await;
    assert_eq!(wrong.status(), 401);
    let wrong_body = wrong.text().await.unwrap();
    let unknown = sign_in(&app, &anon, "nobody", "wrong-password").await;
    assert_eq!(unknown.status(), 401);
    let unknown_body = unknown.text().await.unwrap();
    // Identical except for the echoed username.
    assert_eq!(
        wrong_body.replace("value=\"known\"", "value=\"U\""),
        unknown_body.replace("value=\"nobody\"", "value=\"U\"")
    );
    assert!(wrong_body.contains("The username or password is incorrect."));
    assert!(
        wrong_body.contains("value=\"known\""),
        "typed username kept"
    );
}

async fn a_disabled_user_gets_the_generic_401(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    sign_up(&app, &c, "sleeper", "sleeper-password").await;
    let changed = app.execute_sql("UPDATE users SET active = false WHERE username = 'sleeper'");
    assert_eq!(changed, 1);
    let r = sign_in(&app, &app.client(), "sleeper", "sleeper-password").await;
    assert_answer(r, 401, "The username or password is incorrect.").await;
    // And the existing session is no longer valid.
    let signed_out = async || c.get(app.url("/welcome")).send().await.unwrap().status() == 303;
    assert!(honoured(&app, signed_out).await);
}

async fn three_strikes_lock_even_the_right_password_until_the_window_passes(b: Backend) {
    let app = TestApp::spawn_on(b, &["--lock-window", "2s"]);
    sign_up(&app, &app.client(), "victim", "right-password").await;
    let c = app.client();
    fail_three_times(&app, &c, "victim").await;
    let r = sign_in(&app, &c, "Victim", "right-password").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body = r.text().await.unwrap();
    assert!(body.contains("Try again in"), "{body}");
    assert!(app.log_contains("sign-in refused: locked").await);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(
        sign_in(&app, &c, "victim", "right-password").await.status(),
        303
    );
}

async fn attempts_while_locked_extend_the_lock(b: Backend) {
    let app = TestApp::spawn_on(b, &["--lock-window", "2s"]);
    sign_up(&app, &app.client(), "persist", "right-password").await;
    let c = app.client();
    for _ in 0..3 {
        sign_in(&app, &c, "persist", "wrong-password").await;
    }
    let right = || async {
        sign_in(&app, &c, "persist", "right-password")
            .await
            .status()
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(right().await, 429);
    // 2.3 s after the third failure but only 0.8 s after the last attempt: still locked.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(right().await, 429);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(right().await, 303);
}

async fn success_before_the_lock_clears_the_count(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    sign_up(&app, &app.client(), "careful", "right-password").await;
    let c = app.client();
    // Twice: two failures, then the right password resets the count.
    for _ in 0..2 {
        for _ in 0..2 {
            assert_eq!(
                sign_in(&app, &c, "careful", "wrong-password")
                    .await
                    .status(),
                401
            );
        }
        assert_eq!(
            sign_in(&app, &c, "careful", "right-password")
                .await
                .status(),
            303
        );
    }
}

async fn unknown_usernames_lock_too_and_parallel_guesses_all_count(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let guess = || {
        vec![
            ("username", "ghost".into()),
            ("password", "guess-guess".into()),
        ]
    };
    let statuses = post_in_parallel(&app, "/sign-in", (0..8).map(|_| guess())).await;
    assert_eq!(count_of(&statuses, 401), 3, "{statuses:?}");
    assert_eq!(count_of(&statuses, 429), 5, "{statuses:?}");
}

async fn lock_attempts_are_configurable(b: Backend) {
    let app = TestApp::spawn_on(b, &["--lock-attempts", "5"]);
    let c = app.client();
    for _ in 0..5 {
        assert_eq!(sign_in(&app, &c, "five", "guess-guess").await.status(), 401);
    }
    assert_eq!(sign_in(&app, &c, "five", "guess-guess").await.status(), 429);
}

#[tokio::test]
async fn malformed_usernames_fail_generically_and_are_never_logged() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let typed = "My Secret Passw0rd!";
    for _ in 0..5 {
        let r = sign_in(&app, &c, typed, "whatever-password").await;
        assert_eq!(r.status(), 401, "no lock record for malformed names");
    }
    assert!(
        !app.log().contains("Secret"),
        "a malformed username may be a password"
    );
}
