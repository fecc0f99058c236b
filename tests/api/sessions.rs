//! Sessions: sign-out, rotation, password change, revocation, expiry, restart (docs/behaviour.md
//! §3, §6).

use std::time::Duration;

use crate::both_backends;
use crate::common::*;

both_backends!(
    sign_out_deletes_the_session_server_side,
    sign_in_rotates_the_session,
    a_password_change_ends_other_sessions_and_rotates_this_one,
    a_wrong_current_password_is_401_and_counts_toward_the_lock,
    the_account_page_lists_sessions_and_revokes_them,
    idle_sessions_expire,
    sessions_end_at_the_absolute_limit_even_when_active,
    a_restart_keeps_sessions,
    a_fifty_first_session_ends_the_oldest,
);

/// Signs `user` in on a fresh client; returns the client and its session cookie value.
async fn signed_in(app: &TestApp, user: &str, password: &str) -> (reqwest::Client, String) {
    let c = app.client();
    let r = sign_in(app, &c, user, password).await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r).expect("session cookie");
    (c, cookie)
}

async fn sign_out_deletes_the_session_server_side(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    sign_up(&app, &app.client(), "leaver", "leaver-password").await;
    let (c, cookie) = signed_in(&app, "leaver", "leaver-password").await;
    assert!(cookie_works(&app, &cookie).await);
    let r = submit_form(&app, &c, "/sign-out", "/sign-out", &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    let expired = r.headers().get_all("set-cookie").iter().any(|v| {
        let v = v.to_str().unwrap();
        v.starts_with("session=") && v.contains("Max-Age=0")
    });
    assert!(expired, "cookie expired");
    assert!(!cookie_works(&app, &cookie).await, "old cookie is dead");
    let n = app.query_i64("SELECT count(*) FROM sessions");
    assert_eq!(n, 1, "only the sign-up session remains");
    assert!(app.log_contains("signed out").await);
}

async fn sign_in_rotates_the_session(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    sign_up(&app, &c, "rotor", "rotor-password").await;
    let first = {
        let r = sign_in(&app, &c, "rotor", "rotor-password").await;
        session_cookie(&r).unwrap()
    };
    let r = sign_in(&app, &c, "rotor", "rotor-password").await;
    let second = session_cookie(&r).unwrap();
    assert_ne!(first, second);
    assert!(
        !cookie_works(&app, &first).await,
        "the replaced session is deleted"
    );
    assert!(cookie_works(&app, &second).await);
}

async fn a_password_change_ends_other_sessions_and_rotates_this_one(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    sign_up(&app, &app.client(), "changer", "old-password-1").await;
    let (_a, cookie_a) = signed_in(&app, "changer", "old-password-1").await;
    let (b, cookie_b) = signed_in(&app, "changer", "old-password-1").await;
    let r = change_password(&app, &b, "old-password-1", "new-password-2").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?changed=1");
    let new_b = session_cookie(&r).expect("rotated cookie");
    assert_ne!(new_b, cookie_b);
    assert!(
        !cookie_works(&app, &cookie_a).await,
        "the other browser is signed out"
    );
    assert!(
        !cookie_works(&app, &cookie_b).await,
        "this browser's old id is dead"
    );
    assert!(cookie_works(&app, &new_b).await);
    let html = page_text(&app, &b, "/account?changed=1").await;
    assert!(html.contains("Your password was changed"));
    assert_eq!(
        sign_in(&app, &app.client(), "changer", "old-password-1")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&app, &app.client(), "changer", "new-password-2")
            .await
            .status(),
        303
    );
}

async fn a_wrong_current_password_is_401_and_counts_toward_the_lock(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    sign_up(&app, &c, "forgetful", "real-password").await;
    let token = csrf_token(&app, &c, "/account").await;
    let fields = [
        ("current_password", "not-it-at-all"),
        ("new_password", "new-password-2"),
        ("new_password_repeat", "new-password-2"),
    ];
    for _ in 0..3 {
        let r = post_form(&app, &c, "/account/password", &token, &fields).await;
        assert_answer(r, 401, "Your current password is incorrect.").await;
    }
    let right = [
        ("current_password", "real-password"),
        ("new_password", "new-password-2"),
        ("new_password_repeat", "new-password-2"),
    ];
    let r = post_form(&app, &c, "/account/password", &token, &right).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        sign_in(&app, &app.client(), "forgetful", "real-password")
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn a_bad_new_password_is_400_and_changes_nothing() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "picky", "real-password").await;
    let token = csrf_token(&app, &c, "/account").await;
    for fields in [
        [
            ("current_password", "real-password"),
            ("new_password", "short"),
            ("new_password_repeat", "short"),
        ],
        [
            ("current_password", "real-password"),
            ("new_password", "long-enough-1"),
            ("new_password_repeat", "long-enough-2"),
        ],
    ] {
        let r = post_form(&app, &c, "/account/password", &token, &fields).await;
        assert_eq!(r.status(), 400);
    }
    assert_eq!(
        sign_in(&app, &app.client(), "picky", "real-password")
            .await
            .status(),
        303
    );
}

async fn the_account_page_lists_sessions_and_revokes_them(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    sign_up(&app, &app.client(), "multi", "multi-password").await;
    let (a, cookie_a) = signed_in(&app, "multi", "multi-password").await;
    let (_b, cookie_b) = signed_in(&app, "multi", "multi-password").await;
    let (_c, cookie_c) = signed_in(&app, "multi", "multi-password").await;
    let html = page_text(&app, &a, "/account").await;
    assert!(html.contains("This browser"));
    assert!(html.contains("multi"));
    assert!(html.contains("127.0.0.1"));
    assert!(!html.contains(&cookie_a), "the page never shows a cookie");
    // Revoke the newest other session (c): its public id is in the form action.
    let id_c = app.query_i64("SELECT max(id) FROM sessions");
    assert!(html.contains(&format!("/account/sessions/{id_c}/revoke")));
    let token = hidden_value(&html, "csrf_token").unwrap();
    let r = post_form(
        &app,
        &a,
        &format!("/account/sessions/{id_c}/revoke"),
        &token,
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/account"));
    assert!(!cookie_works(&app, &cookie_c).await);
    assert!(cookie_works(&app, &cookie_b).await);
    // Another user's session id cannot be revoked.
    let (other, other_cookie) = {
        sign_up(&app, &app.client(), "other", "other-password").await;
        signed_in(&app, "other", "other-password").await
    };
    let other_id = app.query_i64("SELECT max(id) FROM sessions");
    let r = post_form(
        &app,
        &a,
        &format!("/account/sessions/{other_id}/revoke"),
        &token,
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(cookie_works(&app, &other_cookie).await);
    drop(other);
    // Sign out everywhere else.
    let r = post_form(&app, &a, "/account/sessions/revoke-others", &token, &[]).await;
    assert_eq!(r.status(), 303);
    assert!(!cookie_works(&app, &cookie_b).await);
    assert!(cookie_works(&app, &cookie_a).await);
    let n = app.query_i64(
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.username = 'multi'",
    );
    assert_eq!(n, 1);
}

#[tokio::test]
async fn account_forms_need_a_session() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = submit_form(&app, &c, "/sign-in", "/account/sessions/revoke-others", &[]).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/sign-in?next=%2Faccount&sig="));
}

#[tokio::test]
async fn garbage_cookies_mean_anonymous_never_500() {
    let app = TestApp::spawn(&[]);
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for value in [
        "",
        "garbage",
        "00000000-0000-0000-0000-000000000000",
        "6ba7b810-9dad-41d1-80b4-00c04fd430c8",
        "'; DROP TABLE users; --",
        &"x".repeat(4000),
        "%00%ff",
        "\"quoted\"",
    ] {
        for path in ["/welcome", "/account", "/api/me", "/sign-in"] {
            let r = c
                .get(app.url(path))
                .header("cookie", format!("session={value}; csrf={value}"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!(status < 500, "{path} with {value:?}: {status}");
            let body = r.text().await.unwrap();
            match path {
                "/sign-in" => assert!(
                    status == 200 && !body.contains("Signed in as"),
                    "{path} {value:?}"
                ),
                "/api/me" => assert_eq!(status, 401),
                _ => assert_eq!(status, 303, "{path} {value:?}"),
            }
        }
    }
}

async fn idle_sessions_expire(b: Backend) {
    let app = TestApp::spawn_on(b, &["--session-idle", "2s"]);
    sign_up(&app, &app.client(), "idler", "idler-password").await;
    let (_c, cookie) = signed_in(&app, "idler", "idler-password").await;
    // Activity keeps it alive past the idle limit ...
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(cookie_works(&app, &cookie).await);
    }
    // ... idleness ends it.
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert!(!cookie_works(&app, &cookie).await);
    // And the server purges expired rows by itself.
    let mut left = i64::MAX;
    for _ in 0..50 {
        left = app.query_i64("SELECT count(*) FROM sessions");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "expired sessions purged");
}

async fn sessions_end_at_the_absolute_limit_even_when_active(b: Backend) {
    let app = TestApp::spawn_on(b, &["--session-max", "3s"]);
    sign_up(&app, &app.client(), "marathon", "marathon-password").await;
    let c = app.client();
    let r = sign_in(&app, &c, "marathon", "marathon-password").await;
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("session="))
        .unwrap();
    assert!(set.contains("Max-Age=3"), "{set}");
    let cookie = session_cookie(&r).unwrap();
    for _ in 0..3 {
        assert!(cookie_works(&app, &cookie).await);
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!cookie_works(&app, &cookie).await);
}

async fn a_restart_keeps_sessions(b: Backend) {
    let mut app = TestApp::spawn_on(b, &[]);
    sign_up(&app, &app.client(), "durable", "durable-password").await;
    let (_c, cookie) = signed_in(&app, "durable", "durable-password").await;
    app.restart();
    assert!(cookie_works(&app, &cookie).await);
}

async fn a_fifty_first_session_ends_the_oldest(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let first = app.client();
    sign_up(&app, &first, "hoarder", "hoarder-password").await;
    assert_eq!(
        first
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The sign-up's session and 49 more: all 50 allowed are kept.
    let mut cookies = Vec::new();
    for _ in 0..49 {
        cookies.push(signed_in(&app, "hoarder", "hoarder-password").await.1);
    }
    assert_eq!(
        first
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The 51st ends the oldest, on the very next request, and only that one.
    cookies.push(signed_in(&app, "hoarder", "hoarder-password").await.1);
    assert_eq!(
        first
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "the sign-up's session was the oldest"
    );
    for cookie in [&cookies[0], &cookies[49]] {
        assert!(cookie_works(&app, cookie).await);
    }
    assert_eq!(app.query_i64("SELECT count(*) FROM sessions"), 50);
}
