//! Signed redirects after sign-in (docs/behaviour.md §5).

use crate::common::*;

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn sign_in_with(
    app: &TestApp,
    c: &reqwest::Client,
    next: &str,
    sig: &str,
) -> reqwest::Response {
    let token = csrf_token(app, c, "/sign-in").await;
    post_form(
        app,
        c,
        "/sign-in",
        &token,
        &[
            ("username", "walker"),
            ("password", "walker-password"),
            ("next", next),
            ("sig", sig),
        ],
    )
    .await
}

#[tokio::test]
async fn anonymous_protected_pages_redirect_to_a_signed_sign_in() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "walker", "walker-password").await;
    let c = app.client();
    let r = c.get(app.url("/welcome")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with("/sign-in?next=%2Fwelcome&sig="), "{loc}");

    let r = c.get(app.url("/account")).send().await.unwrap();
    let loc = location(&r);
    assert_eq!(query_param(&loc, "next").as_deref(), Some("/account"));
    let sig = query_param(&loc, "sig").unwrap();

    // The sign-in page carries the verified pair in hidden fields.
    let html = page_text(&app, &c, &loc).await;
    assert_eq!(hidden_value(&html, "next").as_deref(), Some("/account"));
    assert_eq!(hidden_value(&html, "sig").as_deref(), Some(sig.as_str()));

    let r = sign_in_with(&app, &c, "/account", &sig).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
}

#[tokio::test]
async fn tampered_or_unsigned_redirects_go_to_welcome() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "walker", "walker-password").await;
    let anon = app.client();
    let loc = location(&anon.get(app.url("/account")).send().await.unwrap());
    let sig = query_param(&loc, "sig").unwrap();
    let mut flipped = sig.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    for (next, sig) in [
        ("/account/", sig.as_str()),    // another path with the old sig
        ("/account", flipped.as_str()), // changed sig
        ("/account", ""),               // unsigned
        ("//evil.example", sig.as_str()),
        ("/\\evil.example", sig.as_str()),
        ("https://evil.example/", sig.as_str()),
        ("/caf\u{e9}", "AAAA"),
        ("/x\u{1}y", sig.as_str()),
    ] {
        let c = app.client();
        let r = sign_in_with(&app, &c, next, sig).await;
        assert_eq!(r.status(), 303, "{next}");
        assert_eq!(location(&r), "/welcome", "{next:?} with {sig:?}");
    }
    let too_long = format!("/{}", "a".repeat(2048));
    let r = sign_in_with(&app, &app.client(), &too_long, &sig).await;
    assert_eq!(location(&r), "/welcome");

    // Unverified pairs are not carried on the sign-in page either.
    let html = page_text(
        &app,
        &anon,
        &format!("/sign-in?next=%2F%2Fevil.example&sig={sig}"),
    )
    .await;
    assert!(hidden_value(&html, "next").is_none());
}

#[tokio::test]
async fn a_failed_sign_in_keeps_the_verified_next() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "walker", "walker-password").await;
    let c = app.client();
    let loc = location(&c.get(app.url("/account")).send().await.unwrap());
    let sig = query_param(&loc, "sig").unwrap();
    let r = submit_form(
        &app,
        &c,
        "/sign-in",
        "/sign-in",
        &[
            ("username", "walker"),
            ("password", "nope-nope"),
            ("next", "/account"),
            ("sig", &sig),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert_eq!(hidden_value(&html, "next").as_deref(), Some("/account"));
    assert_eq!(hidden_value(&html, "sig").as_deref(), Some(sig.as_str()));
}

#[tokio::test]
async fn a_non_ascii_next_is_percent_encoded_not_a_500() {
    let app = TestApp::spawn(&["--log-level", "debug"]);
    sign_up(&app, &app.client(), "walker", "walker-password").await;
    // Sign a non-ASCII path with the server's own key, read from the key file.
    let key_bytes = std::fs::read(app.dir.path().join("gatehouse.key")).unwrap();
    let key = gatehouse::security::secret::SecretKey::from_bytes(&key_bytes).unwrap();
    let next =
        gatehouse::security::redirect::LocalPath::parse("/caf\u{e9} au lait?x=\"1\"").unwrap();
    let sig = gatehouse::security::redirect::sign(&key, &next);
    let r = sign_in_with(&app, &app.client(), next.as_str(), &sig).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/caf%C3%A9%20au%20lait?x=%221%22");
}
