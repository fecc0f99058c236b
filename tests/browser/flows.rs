//! The whole journey in a real browser: sign up, sign out, the signed redirect, the account
//! page, a password change, and the check that no plain password ever left the page; once on
//! a secure context (Web Crypto) and once on a plain-HTTP host (the page's own SHA-512). The
//! screenshots of the main pages are taken along the way.

use serde_json::json;

use crate::ONE_BROWSER;
use crate::common::TestApp;
use crate::driver::{Browser, Js};
use crate::site::{
    GENERIC_FAILURE, PLAIN_FIELDS, assert_server_saw_same_fields, assert_wire_digest, digest,
    form_posts, password_forms, screenshot_path, sign_out, submit, text,
};

/// Sign up → welcome → sign out → signed redirect to sign-in → account → change password →
/// sign out → old password refused → new password accepted; then every body Chrome sent and
/// every field name the server logged is checked for plain passwords.
async fn full_flow(host: &str, secure_context: bool, screenshots: bool) {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://{host}:{}", app.port);
    let b = Browser::launch(Js::On).await;

    let user = "carol_flow";
    let full_name = "Carol Q. Tester";
    let email = "carol.flow@example.org";
    let old_pw = "correct horse battery staple";
    // NFKC changes the ligature and the numero sign: the digest must be over "fine päss wörd No9".
    let new_pw = "\u{fb01}ne päss wörd \u{2116}9";

    // The page's context decides the digest path.
    b.goto(&format!("{origin}/sign-up")).await;
    let context = b
        .wait_js(
            "gatehouse.js to load",
            "return window.Gatehouse ? [window.isSecureContext, Gatehouse.usesWebCrypto,
                document.documentElement.classList.contains('js')] : null",
            json!([]),
        )
        .await;
    assert_eq!(
        context,
        json!([secure_context, secure_context, true]),
        "[isSecureContext, usesWebCrypto, html.js] at {origin}"
    );

    // Sign up: lands on /welcome, greeting the full name.
    let at = submit(
        &b,
        "/sign-up",
        &[
            ("username", user),
            ("password", old_pw),
            ("password_repeat", old_pw),
            ("email", email),
            ("full_name", full_name),
        ],
    )
    .await;
    assert_eq!(at, "/welcome", "sign-up should land on /welcome");
    assert_eq!(text(&b, "h1").await, format!("Welcome, {full_name}!"));
    assert_eq!(
        text(&b, ".who strong").await,
        user,
        "the header names the signed-in user"
    );
    if screenshots {
        b.screenshot_full_page(&screenshot_path("welcome")).await;
    }

    sign_out(&b, &origin).await;

    // Anonymous /account → sign-in with a signed `next`.
    b.goto(&format!("{origin}/account")).await;
    let url = b.current_url().await;
    let rest = url
        .strip_prefix(&origin)
        .unwrap_or_else(|| panic!("left the site: {url}"));
    let (path, query) = rest
        .split_once('?')
        .unwrap_or_else(|| panic!("no query on {url}"));
    assert_eq!(
        path, "/sign-in",
        "anonymous /account should redirect to /sign-in: {url}"
    );
    let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("next").as_deref(), Some("/account"), "next in {url}");
    let sig = get("sig").unwrap_or_default();
    assert!(!sig.is_empty(), "no sig in {url}");
    let hidden = b
        .exec(
            "const f = document.querySelector('form[action=\"/sign-in\"]');
             const v = n => { const i = f.querySelector('input[type=hidden][name=' + n + ']'); return i && i.value; };
             return [v('next'), v('sig')]",
            json!([]),
        )
        .await;
    assert_eq!(
        hidden,
        json!(["/account", sig]),
        "the sign-in form should carry next and sig"
    );
    assert_eq!(text(&b, ".notice").await, "Please sign in to continue.");
    if screenshots {
        b.screenshot_full_page(&screenshot_path("sign-in")).await;
    }

    // Sign in there: the signed `next` is followed.
    let at = submit(&b, "/sign-in", &[("username", user), ("password", old_pw)]).await;
    assert_eq!(at, "/account", "signing in should follow the signed next");

    // The sessions table shows this browser, and only it (the first session was signed out).
    let sessions = b
        .exec(
            "const rows = Array.from(document.querySelectorAll('table.sessions tbody tr'));
             return {
               rows: rows.length,
               current: rows.filter(r => r.classList.contains('current')).map(r => ({
                 ua: r.cells[0].title,
                 browser: /^Chrome [0-9]+ on Linux$/.test(r.cells[0].textContent.trim()),
                 ip: r.cells[1].textContent.trim(),
                 badge: r.cells[5].textContent.trim(),
               })),
               ua: navigator.userAgent,
             }",
            json!([]),
        )
        .await;
    assert_eq!(
        sessions["rows"],
        json!(1),
        "exactly one active session: {sessions}"
    );
    assert_eq!(
        sessions["current"],
        json!([{ "ua": sessions["ua"], "browser": true, "ip": "127.0.0.1", "badge": "This browser" }]),
        "the current row should be this browser"
    );

    // Change the password: confirmation shown.
    let at = submit(
        &b,
        "/account/password",
        &[
            ("current_password", old_pw),
            ("new_password", new_pw),
            ("new_password_repeat", new_pw),
        ],
    )
    .await;
    assert_eq!(
        at, "/account?changed=1",
        "a password change redirects to /account with a confirmation"
    );
    let notice = text(&b, ".notice--success").await;
    assert!(
        notice.starts_with("Your password was changed"),
        "confirmation: {notice:?}"
    );
    if screenshots {
        b.screenshot_full_page(&screenshot_path("account")).await;
    }

    sign_out(&b, &origin).await;

    // The old password fails with the generic message and the username kept.
    let at = submit(&b, "/sign-in", &[("username", user), ("password", old_pw)]).await;
    assert_eq!(at, "/sign-in", "a wrong password stays on /sign-in");
    assert_eq!(text(&b, ".notice--error").await, GENERIC_FAILURE);
    let kept = b
        .exec(
            "return document.getElementById('username').value",
            json!([]),
        )
        .await;
    assert_eq!(kept, json!(user), "the typed username is kept");
    assert_eq!(
        text(&b, ".who").await,
        "",
        "a failed sign-in must not sign in"
    );

    // The new one works, typed with other case and spaces around the username (docs/behaviour.md
    // §2).
    let typed_user = "  Carol_Flow ";
    let at = submit(
        &b,
        "/sign-in",
        &[("username", typed_user), ("password", new_pw)],
    )
    .await;
    assert_eq!(at, "/welcome", "the new password should sign in");
    assert_eq!(text(&b, "h1").await, format!("Welcome, {full_name}!"));

    // What Chrome sent.
    let d_old = digest(user, old_pw);
    let d_new = digest(user, new_pw);
    let expected: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/sign-up", vec![("password_digest", &d_old)]),
        ("/sign-out", vec![]),
        ("/sign-in", vec![("password_digest", &d_old)]),
        (
            "/account/password",
            vec![
                ("current_password_digest", &d_old),
                ("new_password_digest", &d_new),
            ],
        ),
        ("/sign-out", vec![]),
        ("/sign-in", vec![("password_digest", &d_old)]),
        ("/sign-in", vec![("password_digest", &d_new)]),
    ];
    let posts = form_posts(&b, &origin, expected.len()).await;
    let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths, want, "the POSTs Chrome sent");
    for (post, (path, digests)) in posts.iter().zip(&expected) {
        for (name, want) in digests {
            let got = post
                .value(name)
                .unwrap_or_else(|| panic!("POST {path} lacks {name}: {:?}", post.raw));
            assert_wire_digest(got, &format!("POST {path} {name}"));
            assert_eq!(
                got, *want,
                "POST {path} {name} is not the digest of docs/behaviour.md §2"
            );
        }
        for plain in PLAIN_FIELDS {
            assert!(
                post.value(plain).is_none(),
                "POST {path} sent the plain field {plain}: {:?}",
                post.raw
            );
        }
        assert!(
            post.value("csrf_token").is_some_and(|t| !t.is_empty()),
            "POST {path} has no csrf_token"
        );
    }
    assert_eq!(posts[2].value("next"), Some("/account"));
    assert_eq!(posts[2].value("sig"), Some(sig.as_str()));
    assert_eq!(posts[6].value("username"), Some(typed_user));

    // The typed passwords appear in no request Chrome sent: no body, no URL.
    let secrets: Vec<String> = password_forms(old_pw)
        .into_iter()
        .chain(password_forms(new_pw))
        .collect();
    for r in b.sent_requests().await {
        for s in &secrets {
            assert!(
                !r.url.contains(s.as_str()),
                "a password is in the URL {}",
                r.url
            );
            if let Some(body) = &r.body {
                assert!(
                    !body.contains(s.as_str()),
                    "a password is in the body of {} {}",
                    r.method,
                    r.url
                );
            }
        }
    }

    // The server saw the same field names, and logged no password and no digest.
    let log = app.log();
    assert_server_saw_same_fields(&posts, &log);
    for s in secrets
        .iter()
        .map(String::as_str)
        .chain([d_old.as_str(), d_new.as_str()])
    {
        assert!(
            !log.contains(s),
            "the server log contains a password or digest ({s:?})"
        );
    }

    b.quit().await;
}

#[tokio::test]
async fn full_flow_on_loopback_uses_web_crypto() {
    full_flow("127.0.0.1", true, true).await;
}

#[tokio::test]
async fn full_flow_on_plain_http_host_uses_fallback_sha512() {
    full_flow("gatehouse.test", false, false).await;
}
