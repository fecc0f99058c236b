//! The sign-up form's checks in the browser, before anything is sent: password length and
//! repeat, the username's rules, and how the messages are tied to their fields for assistive
//! technology.

use std::time::Duration;

use serde_json::{Value, json};

use crate::ONE_BROWSER;
use crate::common::TestApp;
use crate::driver::{Browser, Js};
use crate::site;
use crate::site::{digest, form_posts, press_submit, screenshot_path, server_forms};

/// The page state the client-side validation tests look at.
async fn sign_up_state(b: &Browser) -> Value {
    b.exec(
        "const out = {};
         for (const id of ['username', 'password', 'password_repeat', 'email', 'full_name']) {
           const el = document.getElementById(id);
           out[id] = [el.getAttribute('aria-invalid'), document.getElementById(id + '-error').textContent.trim()];
         }
         const s = document.querySelector('.form-errors');
         out.summary = s.hidden ? null : s.textContent.replace(/\\s+/g, ' ').trim();
         out.focus = document.activeElement ? document.activeElement.id : null;
         out.samePage = window.__gatehouseOldPage === true && location.pathname === '/sign-up';
         return out;",
        json!([]),
    )
    .await
}

/// Presses submit with the given passwords and waits for the client's message at `field`.
async fn rejected_submit(
    b: &Browser,
    password: &str,
    repeat: &str,
    field: &str,
    message: &str,
) -> Value {
    b.fill("#password", password).await;
    b.fill("#password_repeat", repeat).await;
    press_submit(b, "/sign-up").await;
    b.wait_js(
        &format!("the message {message:?} at {field}"),
        "return document.getElementById(arguments[0] + '-error').textContent.trim() === arguments[1]",
        json!([field, message]),
    )
    .await;
    sign_up_state(b).await
}

/// With `pw` in both password fields the sign-up form goes through: one POST, carrying the
/// digest for the canonical `username`, and the welcome page.
async fn goes_through(b: &Browser, origin: &str, username: &str, pw: &str) {
    b.fill("#password", pw).await;
    b.fill("#password_repeat", pw).await;
    press_submit(b, "/sign-up").await;
    assert_eq!(site::wait_new_page(b, "/sign-up").await, "/welcome");
    let posts = form_posts(b, origin, 1).await;
    assert_eq!(posts.len(), 1, "exactly one POST: {posts:?}");
    assert_eq!(
        posts[0].value("password_digest"),
        Some(digest(username, pw).as_str())
    );
}

/// Neither end saw a form: after a moment for a stray request to show, the server logged
/// none and Chrome sent no POST.
async fn assert_nothing_sent(app: &TestApp, b: &Browser, origin: &str) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server_forms(&app.log()).is_empty(),
        "the server received a form:\n{}",
        app.log()
    );
    assert!(
        form_posts(b, origin, 0).await.is_empty(),
        "Chrome sent a POST"
    );
}

#[tokio::test]
async fn sign_up_checks_passwords_in_the_browser_before_sending() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://127.0.0.1:{}", app.port);
    let b = Browser::launch(Js::On).await;
    b.goto_scripted(&format!("{origin}/sign-up")).await;
    b.fill("#username", "valerie").await;

    const MISMATCH: &str = "The passwords do not match.";
    const SHORT: &str = "Use at least 8 characters.";

    // Mismatched repeat: the message at the repeat, focus there.
    let s = rejected_submit(
        &b,
        "long enough 1",
        "long enough 2",
        "password_repeat",
        MISMATCH,
    )
    .await;
    assert_eq!(s["password_repeat"], json!(["true", MISMATCH]), "{s}");
    assert_eq!(s["password"], json!([null, ""]), "{s}");
    assert_eq!(
        s["focus"],
        json!("password_repeat"),
        "focus moves to the bad field: {s}"
    );
    assert_eq!(
        s["samePage"],
        json!(true),
        "the browser must stay on the page: {s}"
    );
    assert!(
        s["summary"].as_str().is_some_and(|t| t.contains(MISMATCH)),
        "summary: {s}"
    );

    // Seven characters, repeated: the message at the password, the old one cleared.
    let s = rejected_submit(&b, "short77", "short77", "password", SHORT).await;
    assert_eq!(s["password"], json!(["true", SHORT]), "{s}");
    assert_eq!(
        s["password_repeat"],
        json!([null, ""]),
        "the mismatch message is cleared: {s}"
    );
    assert_eq!(s["focus"], json!("password"), "{s}");
    assert_eq!(s["samePage"], json!(true), "{s}");

    // Both wrong: both marked, focus on the first bad field.
    let s = rejected_submit(&b, "short77", "short78", "password_repeat", MISMATCH).await;
    assert_eq!(s["password"], json!(["true", SHORT]), "{s}");
    assert_eq!(s["password_repeat"], json!(["true", MISMATCH]), "{s}");
    assert_eq!(
        s["focus"],
        json!("password"),
        "focus goes to the first bad field: {s}"
    );
    assert_eq!(s["samePage"], json!(true), "{s}");
    for other in ["username", "email", "full_name"] {
        assert_eq!(s[other], json!([null, ""]), "{other} is fine: {s}");
    }
    b.screenshot_full_page(&screenshot_path("sign-up")).await;

    // Nothing was sent: give a stray request a moment to show, then look both ends.
    assert_nothing_sent(&app, &b, &origin).await;

    // Corrected, the form goes through: exactly one POST, with the digest.
    goes_through(&b, &origin, "valerie", "long enough 1").await;
    assert_eq!(
        server_forms(&app.log()).len(),
        1,
        "exactly one form at the server"
    );

    b.quit().await;
}

#[tokio::test]
async fn sign_up_checks_the_username_in_the_browser_before_sending() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://127.0.0.1:{}", app.port);
    let b = Browser::launch(Js::On).await;
    b.goto_scripted(&format!("{origin}/sign-up")).await;
    let pw = "long enough 1";
    b.fill("#password", pw).await;
    b.fill("#password_repeat", pw).await;

    // The server's own messages (docs/behaviour.md §2 rule), at the field, before anything is sent.
    for (typed, message) in [
        ("", "Enter a username."),
        ("  ab ", "Use at least 3 characters."),
        (
            "a_name_that_is_far_too_long_for_it",
            "Use at most 32 characters.",
        ),
        ("no spaces", "Use only letters a–z, digits and underscores."),
        ("jürgen", "Use only letters a–z, digits and underscores."),
    ] {
        b.fill("#username", typed).await;
        press_submit(&b, "/sign-up").await;
        b.wait_js(
            &format!("the message {message:?} for {typed:?}"),
            "return document.getElementById('username-error').textContent.trim() === arguments[0]",
            json!([message]),
        )
        .await;
        let s = sign_up_state(&b).await;
        assert_eq!(s["username"], json!(["true", message]), "{typed:?}: {s}");
        assert_eq!(s["focus"], json!("username"), "{typed:?}: {s}");
        assert_eq!(s["samePage"], json!(true), "{typed:?}: {s}");
        assert!(
            s["summary"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("Username: {message}"))),
            "{typed:?}: summary {s}"
        );
        for other in ["password", "password_repeat", "email", "full_name"] {
            assert_eq!(
                s[other],
                json!([null, ""]),
                "{typed:?}: {other} is fine: {s}"
            );
        }
        let described = b
            .exec(
                "return document.getElementById('username').getAttribute('aria-describedby')",
                json!([]),
            )
            .await;
        assert!(
            described
                .as_str()
                .is_some_and(|d| d.split(' ').any(|id| id == "username-error")),
            "the message is tied to the field: {described}"
        );
    }

    // Nothing was sent.
    assert_nothing_sent(&app, &b, &origin).await;

    // Surrounding spaces and capitals are fine (the canonical form is checked): it goes through.
    b.fill("#username", "  Valid_Name_7 ").await;
    goes_through(&b, &origin, "valid_name_7", pw).await;
    b.quit().await;
}
