//! Authenticator codes in a real browser (docs/behaviour.md §13.1): set-up on `/account` with
//! the secret read off the page and the QR code drawn inline, then a sign-in through the
//! password step (the page's JS digest) and the code form, landing on the signed `next`.

use gatehouse::security::totp::{STEP, TotpSecret};
use serde_json::json;

use crate::ONE_BROWSER;
use crate::common::TestApp;
use crate::driver::{Browser, Js};
use crate::site::{press_submit, sign_out, submit, text, wait_new_page};

fn now_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / STEP
}

#[tokio::test]
async fn authenticator_codes_set_up_and_sign_in_through_the_pages() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://127.0.0.1:{}", app.port);
    let b = Browser::launch(Js::On).await;
    let (user, password) = ("tess_totp", "correct horse battery staple");

    b.goto(&format!("{origin}/sign-up")).await;
    let at = submit(
        &b,
        "/sign-up",
        &[
            ("username", user),
            ("password", password),
            ("password_repeat", password),
        ],
    )
    .await;
    assert_eq!(at, "/welcome");

    // Set-up: the key, the link and an inline SVG QR code; off until a code confirms it.
    b.goto(&format!("{origin}/account")).await;
    assert!(text(&b, "#two-step-state").await.contains("off"));
    press_submit(&b, "/account/two-step/setup").await;
    wait_new_page(&b, "/account/two-step/setup").await;
    let b32 = text(&b, "#totp-secret").await;
    let shown = b
        .exec(
            "return [document.querySelector('#totp-qr svg') !== null,
                     document.querySelector('#totp-uri').getAttribute('href')]",
            json!([]),
        )
        .await;
    assert_eq!(shown[0], json!(true), "a QR code drawn inline");
    let uri = shown[1].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={b32}")), "{uri}");
    let bytes = totp_rs::Secret::Encoded(b32.clone()).to_bytes().unwrap();
    let secret = TotpSecret::from_bytes(&bytes).unwrap();
    let step = now_step();
    let at = submit(
        &b,
        "/account/two-step/confirm",
        &[("confirm_code", &secret.code_at(step * STEP))],
    )
    .await;
    assert_eq!(at, "/account/two-step/confirm");
    let codes = b
        .exec(
            "return document.querySelectorAll('#recovery-codes li').length",
            json!([]),
        )
        .await;
    assert_eq!(codes, json!(10), "ten recovery codes shown once");
    assert!(text(&b, "#two-step-state").await.contains("on"));

    // Sign in again: the password step leads to the code form, the code to the signed `next`.
    sign_out(&b, &origin).await;
    b.goto(&format!("{origin}/account")).await;
    let at = submit(
        &b,
        "/sign-in",
        &[("username", user), ("password", password)],
    )
    .await;
    assert_eq!(at, "/sign-in/code", "the password alone opens no session");
    let at = submit(
        &b,
        "/sign-in/code",
        &[("code", &secret.code_at((step + 1) * STEP))],
    )
    .await;
    assert_eq!(
        at, "/account",
        "the code completes the sign-in and follows next"
    );
    assert_eq!(text(&b, ".who strong").await, user);
    b.quit().await;
}
