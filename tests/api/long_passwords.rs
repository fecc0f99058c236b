//! Plain password fields are bounded before NFKC runs on them (16 KiB, `PlainPassword::
//! MAX_TYPED_BYTES`), and the bound refuses no valid password: NFKC can shrink its input.

use serde_json::json;

use crate::common::*;

/// 1024 Hangul syllables typed as conjoining jamo (9 216 bytes): 1024 characters after NFKC.
fn hangul_decomposed() -> String {
    "\u{1100}\u{1161}\u{11a8}".repeat(1024)
}

async fn api(app: &TestApp, path: &str, user: &str, password: &str) -> reqwest::Response {
    app.client()
        .post(app.url(path))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_maximal_password_that_nfkc_shrinks_is_accepted() {
    let app = TestApp::spawn(&[]);
    let typed = hangul_decomposed();
    assert_eq!(typed.len(), 9216);
    let r = api(&app, "/api/users", "jamo", &typed).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Typed either way, it is the same password.
    assert_eq!(
        api(&app, "/api/session", "jamo", &typed).await.status(),
        204
    );
    let composed = "\u{ac01}".repeat(1024);
    assert_eq!(
        api(&app, "/api/session", "jamo", &composed).await.status(),
        204
    );
}

#[tokio::test]
async fn an_over_long_new_password_gets_the_field_message() {
    let app = TestApp::spawn(&[]);
    let r = api(&app, "/api/users", "verbose", &"x".repeat(17 * 1024)).await;
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["fields"]["password"], "Use at most 1024 characters.",
        "{v}"
    );
    // The no-JS password change says the same at its field; a long repeat does not match.
    let owner = app.client();
    sign_up(&app, &owner, "verbose", "verbose-password").await;
    let long = "y".repeat(17 * 1024);
    let r = change_password(&app, &owner, "verbose-password", &long).await;
    assert_answer(r, 400, "Use at most 1024 characters.").await;
    let r = submit_form(
        &app,
        &owner,
        "/account",
        "/account/password",
        &[
            ("current_password", "verbose-password"),
            ("new_password", "a-new-password"),
            ("new_password_repeat", &long),
        ],
    )
    .await;
    assert_answer(r, 400, "The passwords do not match.").await;
}

#[tokio::test]
async fn an_over_long_password_at_sign_in_fails_like_a_wrong_one_after_the_kdf() {
    let app = TestApp::spawn(&["--metrics-bind", "127.0.0.1:0"]);
    sign_up(&app, &app.client(), "longshot", "longshot-password").await;
    let runs = |text: String| metric_value(&text, "gatehouse_kdf_wait_seconds_count", &[]);
    let before = runs(scrape_metrics(&app).await).unwrap();
    let long = "z".repeat(40 * 1024);
    let r = api(&app, "/api/session", "longshot", &long).await;
    assert_eq!(r.status(), 401, "the generic failure, not a format error");
    let r = sign_in(&app, &app.client(), "longshot", &long).await;
    assert_answer(r, 401, "The username or password is incorrect.").await;
    // A wrong current password too: 401 on the account page.
    let owner = app.client();
    sign_in(&app, &owner, "longshot", "longshot-password").await;
    let r = change_password(&app, &owner, &long, "another-password").await;
    assert_eq!(r.status(), 401);
    let after = runs(scrape_metrics(&app).await).unwrap();
    // Three refused checks and one sign-in: each ran the KDF once.
    assert_eq!(after - before, 4.0);
}
