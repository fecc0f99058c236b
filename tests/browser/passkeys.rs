//! Passkeys in a real browser (docs/behaviour.md §13.2): headless Chromium on
//! `http://localhost:PORT` (a secure context) with a DevTools virtual authenticator (CTAP2,
//! internal transport, resident keys, user verification): register a passkey on `/account`,
//! sign out, sign in with it (no username, no password), then remove it. Also: on a host that
//! is not a secure context the passkey controls stay hidden.

use serde_json::json;

use crate::ONE_BROWSER;
use crate::common::TestApp;
use crate::driver::{Browser, Js};
use crate::site::{sign_out, submit, text};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn a_passkey_is_registered_used_and_removed() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://localhost:{}", app.port);
    let b = Browser::launch(Js::On).await;
    b.cdp("WebAuthn.enable", json!({})).await;
    let added = b
        .cdp(
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }}),
        )
        .await;
    let authenticator = added["authenticatorId"]
        .as_str()
        .expect("an authenticator id")
        .to_owned();

    b.goto(&format!("{origin}/sign-up")).await;
    let at = submit(
        &b,
        "/sign-up",
        &[
            ("username", "pia"),
            ("password", PASSWORD),
            ("password_repeat", PASSWORD),
        ],
    )
    .await;
    assert_eq!(at, "/welcome");

    // Add a passkey on /account: the control is shown only here, where WebAuthn works.
    b.goto(&format!("{origin}/account")).await;
    b.wait_js(
        "the add-passkey form to show",
        "const f = document.getElementById('passkey-add'); return f && !f.hidden",
        json!([]),
    )
    .await;
    b.fill("#passkey-new-name", "virtual laptop").await;
    b.exec("window.__gatehouseOldPage = true; return null", json!([]))
        .await;
    b.click("#passkey-add-button").await;
    let landed = b
        .wait_js(
            "the account page after adding a passkey",
            "const err = document.getElementById('passkey-add-error');
             if (err && !err.hidden) return 'error: ' + err.textContent;
             return (!window.__gatehouseOldPage && document.readyState === 'complete')
               ? location.pathname + location.search : null",
            json!([]),
        )
        .await;
    assert_eq!(landed, json!("/account?passkey=added"));
    assert_eq!(text(&b, ".passkey-name").await, "virtual laptop");
    let creds = b
        .cdp(
            "WebAuthn.getCredentials",
            json!({"authenticatorId": authenticator}),
        )
        .await;
    let creds = creds["credentials"].as_array().expect("credentials");
    assert_eq!(creds.len(), 1);
    assert_eq!(
        creds[0]["isResidentCredential"],
        json!(true),
        "a discoverable credential"
    );

    // Sign out; sign in with the passkey alone, on the way to /account.
    sign_out(&b, &origin).await;
    b.goto(&format!("{origin}/account")).await;
    b.wait_js(
        "the passkey button to show",
        "const d = document.getElementById('passkey-sign-in'); return d && !d.hidden",
        json!([]),
    )
    .await;
    b.exec("window.__gatehouseOldPage = true; return null", json!([]))
        .await;
    b.click("#passkey-sign-in-button").await;
    let landed = b
        .wait_js(
            "the page after a passkey sign-in",
            "const err = document.getElementById('passkey-sign-in-error');
             if (err && !err.hidden) return 'error: ' + err.textContent;
             return (!window.__gatehouseOldPage && document.readyState === 'complete')
               ? location.pathname : null",
            json!([]),
        )
        .await;
    assert_eq!(
        landed,
        json!("/account"),
        "signed in and sent back to /account"
    );
    assert_eq!(text(&b, ".who strong").await, "pia");
    assert!(
        !text(&b, "table.passkeys").await.contains("never"),
        "the passkey shows when it was last used"
    );

    // Remove it (the last one: allowed); the password still works.
    b.exec("window.__gatehouseOldPage = true; return null", json!([]))
        .await;
    b.click("form[action$=\"/remove\"] button[type=submit]")
        .await;
    let landed = b
        .wait_js(
            "the account page after removing the passkey",
            "return (!window.__gatehouseOldPage && document.readyState === 'complete')
               ? location.pathname + location.search : null",
            json!([]),
        )
        .await;
    assert_eq!(landed, json!("/account?passkey=removed"));
    assert!(
        b.exec(
            "return document.getElementById('no-passkeys') !== null",
            json!([])
        )
        .await
            == json!(true)
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM passkeys"), 0);
    b.quit().await;
}

#[tokio::test]
async fn passkey_controls_stay_hidden_outside_a_secure_context() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://gatehouse.test:{}", app.port);
    let b = Browser::launch(Js::On).await;
    b.goto(&format!("{origin}/sign-in")).await;
    let state = b
        .wait_js(
            "gatehouse.js to load",
            "return document.documentElement.classList.contains('js')
               ? [window.isSecureContext, document.getElementById('passkey-sign-in').hidden] : null",
            json!([]),
        )
        .await;
    assert_eq!(state, json!([false, true]));
    b.quit().await;
}
