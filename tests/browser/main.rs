//! Real-browser tests: Debian's headless Chromium, driven through chromedriver, against the real
//! server binary (docs/behaviour.md §2, §3). Each test starts its own server (temp database) and
//! browser; the tests take turns so that one Chromium at a time shares the 2-core machine.
//!
//! `gatehouse.test` is mapped to 127.0.0.1 by Chromium's `--host-resolver-rules`, so the same
//! server is seen at `http://127.0.0.1:PORT` (a secure context: Web Crypto exists) and at
//! `http://gatehouse.test:PORT` (not a secure context: the page's own SHA-512 must do).

#[path = "../common/mod.rs"]
mod common;

mod driver;
mod phone;
mod site;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use common::TestApp;
use driver::{Browser, Js};
use site::{
    GENERIC_FAILURE, PLAIN_FIELDS, assert_server_saw_same_fields, assert_wire_digest, digest,
    form_posts, password_forms, press_submit, screenshot_path, server_forms, sha512_hex, sign_out,
    submit, text,
};

/// One browser at a time, whatever `--test-threads` says.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// docs/behaviour.md §2 test vectors.
const VECTORS: [(&str, &str, &str); 3] = [
    (
        "alice",
        "correct horse battery staple",
        "qfHFJMsdCQvQ1SBaXfnadH82UaLiL6vuRP1Pc3S1eotaTmbLir/Tklt5LD8FtCL71N2LTzfdtyr7oZmONwduEQ==",
    ),
    (
        "Bob_42 ",
        "hunter2hunter2",
        "ABTpI6gYVn4M5bVqaNgMpvMVY3u9zxcqaRLFLhvuoxskGLSKzkmCHzi4VjJ5eLEaT4NMGVPc2AJaJH3TkblIIQ==",
    ),
    (
        "zoe",
        "pa\u{0308}ssw\u{00f6}rd \u{fb01} \u{1f511}",
        "mh3cibthvry4Wbz5wehkI7sJnafVWUxonPL3DQi79CatdwVsRmYsb6d5RxNzWiLgRQ/DP8WcEKmng+LTQIgUeg==",
    ),
];

/// FIPS 180-2 SHA-512 examples (message, hex digest); `None` is one million 'a'.
const NIST: [(Option<&str>, &str); 4] = [
    (
        Some("abc"),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
    (
        Some(""),
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    ),
    (
        Some(
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        ),
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
    ),
    (
        None,
        "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b",
    ),
];

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

/// Runs `Gatehouse.digest` (kind "auto") or `digestWith(kind, …)` in the page.
async fn js_digest(
    b: &Browser,
    kind: &str,
    username: &str,
    password: &str,
) -> Result<String, String> {
    let v = b
        .exec_async(
            "const [kind, u, p, done] = arguments;
             const run = kind === 'auto' ? Gatehouse.digest(u, p) : Gatehouse.digestWith(kind, u, p);
             run.then(d => done({ ok: d }), e => done({ err: String((e && e.message) || e) }));",
            json!([kind, username, password]),
        )
        .await;
    match (v["ok"].as_str(), v["err"].as_str()) {
        (Some(d), _) => Ok(d.to_owned()),
        (_, Some(e)) => Err(e.to_owned()),
        _ => panic!("unexpected answer {v}"),
    }
}

/// `Gatehouse.sha512` over the NIST messages, then over block-boundary lengths.
async fn check_js_sha512(b: &Browser, origin: &str) {
    let messages: Vec<Value> = NIST.iter().map(|(m, _)| json!(m)).collect();
    let got = b
        .exec(
            "const hex = b => Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
             return arguments[0].map(m => hex(Gatehouse.sha512(
               m === null ? new Uint8Array(1000000).fill(97) : new TextEncoder().encode(m))));",
            json!([messages]),
        )
        .await;
    let want: Vec<&str> = NIST.iter().map(|(_, h)| *h).collect();
    assert_eq!(
        got,
        json!(want),
        "Gatehouse.sha512 vs FIPS 180-2 at {origin}"
    );

    // Padding edges: one block, the 112-byte limit, two and three blocks.
    let lengths = [
        1usize, 55, 56, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 1000,
    ];
    let got = b
        .exec(
            "const hex = b => Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
             return arguments[0].map(n => hex(Gatehouse.sha512(Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 255))));",
            json!([lengths]),
        )
        .await;
    let want: Vec<String> = lengths
        .iter()
        .map(|&n| {
            sha512_hex(
                &(0..n)
                    .map(|i| ((i * 7 + 3) & 255) as u8)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        got,
        json!(want),
        "Gatehouse.sha512 vs sha2 at block boundaries at {origin}"
    );
}

#[tokio::test]
async fn js_digest_matches_spec_vectors_on_both_paths() {
    // The Rust helper the other tests trust agrees with the vectors in docs/behaviour.md §2 first.
    for (u, p, d) in VECTORS {
        assert_eq!(digest(u, p), d, "Rust helper digest({u:?})");
    }
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let b = Browser::launch(Js::On).await;

    // Secure context: both implementations.
    let origin = format!("http://127.0.0.1:{}", app.port);
    b.goto(&format!("{origin}/sign-in")).await;
    let ctx = b
        .wait_js(
            "gatehouse.js",
            "return window.Gatehouse ? [window.isSecureContext, Gatehouse.usesWebCrypto, typeof crypto.subtle] : null",
            json!([]),
        )
        .await;
    assert_eq!(
        ctx,
        json!([true, true, "object"]),
        "127.0.0.1 is a secure context"
    );
    for (u, p, want) in VECTORS {
        for kind in ["webcrypto", "fallback", "auto"] {
            let got = js_digest(&b, kind, u, p).await;
            assert_eq!(
                got.as_deref(),
                Ok(want),
                "{kind} digest of ({u:?}, {p:?}) on 127.0.0.1"
            );
        }
    }
    check_js_sha512(&b, &origin).await;

    // Not a secure context: no Web Crypto; digest() must use the fallback and still agree.
    let origin = format!("http://gatehouse.test:{}", app.port);
    b.goto(&format!("{origin}/sign-in")).await;
    let ctx = b
        .wait_js(
            "gatehouse.js",
            "return window.Gatehouse ? [location.origin, window.isSecureContext, Gatehouse.usesWebCrypto, typeof crypto.subtle] : null",
            json!([]),
        )
        .await;
    assert_eq!(
        ctx,
        json!([origin, false, false, "undefined"]),
        "gatehouse.test is not a secure context"
    );
    for (u, p, want) in VECTORS {
        for kind in ["auto", "fallback"] {
            let got = js_digest(&b, kind, u, p).await;
            assert_eq!(
                got.as_deref(),
                Ok(want),
                "{kind} digest of ({u:?}, {p:?}) on gatehouse.test"
            );
        }
        let webcrypto = js_digest(&b, "webcrypto", u, p).await;
        assert!(
            webcrypto.is_err(),
            "digestWith('webcrypto') must reject without Web Crypto, got {webcrypto:?}"
        );
    }
    check_js_sha512(&b, &origin).await;

    b.quit().await;
}

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

#[tokio::test]
async fn sign_up_checks_passwords_in_the_browser_before_sending() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://127.0.0.1:{}", app.port);
    let b = Browser::launch(Js::On).await;
    b.goto(&format!("{origin}/sign-up")).await;
    b.wait_js(
        "gatehouse.js",
        "return Boolean(window.Gatehouse)",
        json!([]),
    )
    .await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server_forms(&app.log()).is_empty(),
        "the server received a form:\n{}",
        app.log()
    );
    assert!(
        form_posts(&b, &origin, 0).await.is_empty(),
        "Chrome sent a POST"
    );

    // Corrected, the form goes through: exactly one POST, with the digest.
    let pw = "long enough 1";
    b.fill("#password", pw).await;
    b.fill("#password_repeat", pw).await;
    press_submit(&b, "/sign-up").await;
    assert_eq!(site::wait_new_page(&b, "/sign-up").await, "/welcome");
    let posts = form_posts(&b, &origin, 1).await;
    assert_eq!(posts.len(), 1, "exactly one POST: {posts:?}");
    assert_eq!(
        posts[0].value("password_digest"),
        Some(digest("valerie", pw).as_str())
    );
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
    b.goto(&format!("{origin}/sign-up")).await;
    b.wait_js(
        "gatehouse.js",
        "return Boolean(window.Gatehouse)",
        json!([]),
    )
    .await;
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server_forms(&app.log()).is_empty(),
        "the server received a form:\n{}",
        app.log()
    );
    assert!(
        form_posts(&b, &origin, 0).await.is_empty(),
        "Chrome sent a POST"
    );

    // Surrounding spaces and capitals are fine (the canonical form is checked): it goes through.
    b.fill("#username", "  Valid_Name_7 ").await;
    b.fill("#password", pw).await;
    b.fill("#password_repeat", pw).await;
    press_submit(&b, "/sign-up").await;
    assert_eq!(site::wait_new_page(&b, "/sign-up").await, "/welcome");
    let posts = form_posts(&b, &origin, 1).await;
    assert_eq!(posts.len(), 1, "exactly one POST: {posts:?}");
    assert_eq!(
        posts[0].value("password_digest"),
        Some(digest("valid_name_7", pw).as_str())
    );
    b.quit().await;
}

/// Signs in through the sign-in page; returns where the browser landed.
async fn sign_in(b: &Browser, origin: &str, user: &str, password: &str) -> String {
    b.goto(&format!("{origin}/sign-in")).await;
    submit(b, "/sign-in", &[("username", user), ("password", password)]).await
}

#[tokio::test]
async fn without_javascript_the_server_digests_and_both_paths_agree() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://127.0.0.1:{}", app.port);

    let (js_user, js_pw) = ("jess_js", "made with script 1");
    let (plain_user, plain_pw) = ("nora_nojs", "made without script 2");
    let plain_name = "Nora No-Script";

    // 1. With JavaScript: an account whose password only ever travelled as a digest.
    let with_js = Browser::launch(Js::On).await;
    with_js.goto(&format!("{origin}/sign-up")).await;
    with_js
        .wait_js(
            "gatehouse.js",
            "return Boolean(window.Gatehouse)",
            json!([]),
        )
        .await;
    let at = submit(
        &with_js,
        "/sign-up",
        &[
            ("username", js_user),
            ("password", js_pw),
            ("password_repeat", js_pw),
        ],
    )
    .await;
    assert_eq!(at, "/welcome");
    let footer = with_js
        .exec(
            "return document.querySelector('.site-footer').innerText.trim()",
            json!([]),
        )
        .await;
    assert_eq!(
        footer,
        json!("Your password is digested in your browser and never sent as typed."),
        "the footer with JS"
    );
    sign_out(&with_js, &origin).await;
    let posts = form_posts(&with_js, &origin, 2).await;
    assert_eq!(
        posts[0].value("password_digest"),
        Some(digest(js_user, js_pw).as_str())
    );
    assert!(
        posts[0].value("password").is_none(),
        "JS sent the plain password"
    );

    // 2. Without JavaScript.
    let no_js = Browser::launch(Js::Off).await;
    no_js.goto(&format!("{origin}/sign-up")).await;
    let state = no_js
        .exec(
            "return [document.documentElement.classList.contains('js'), typeof window.Gatehouse,
                     document.querySelector('script[src*=\"gatehouse.js\"]') !== null]",
            json!([]),
        )
        .await;
    assert_eq!(
        state,
        json!([false, "undefined", true]),
        "[html.js, Gatehouse, script tag]: JS must be off"
    );
    // The footer's promise is about what really happens to the password.
    let footer = no_js
        .exec(
            "return document.querySelector('.site-footer').innerText.trim()",
            json!([]),
        )
        .await;
    assert_eq!(
        footer,
        json!(
            "JavaScript is off: your password is sent to the server as typed, which digests it \
             the same way and keeps only an Argon2id hash."
        ),
        "the footer without JS"
    );

    let at = submit(
        &no_js,
        "/sign-up",
        &[
            ("username", plain_user),
            ("password", plain_pw),
            ("password_repeat", plain_pw),
            ("full_name", plain_name),
        ],
    )
    .await;
    assert_eq!(at, "/welcome");
    assert_eq!(text(&no_js, "h1").await, format!("Welcome, {plain_name}!"));
    sign_out(&no_js, &origin).await;
    assert_eq!(
        sign_in(&no_js, &origin, plain_user, plain_pw).await,
        "/welcome"
    );
    assert_eq!(text(&no_js, "h1").await, format!("Welcome, {plain_name}!"));
    sign_out(&no_js, &origin).await;
    // The account made with JS signs in without it.
    assert_eq!(
        sign_in(&no_js, &origin, js_user, js_pw).await,
        "/welcome",
        "a JS-made account signs in without JS"
    );
    assert_eq!(text(&no_js, "h1").await, format!("Welcome, {js_user}!"));

    // Without JS the plain password is what travels, the hidden digest field empty.
    let posts = form_posts(&no_js, &origin, 5).await;
    let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/sign-up", "/sign-out", "/sign-in", "/sign-out", "/sign-in"]
    );
    assert_eq!(posts[0].value("password"), Some(plain_pw));
    assert_eq!(posts[0].value("password_repeat"), Some(plain_pw));
    assert_eq!(posts[0].value("password_digest"), Some(""));
    assert_eq!(posts[2].value("password"), Some(plain_pw));
    assert_eq!(posts[4].value("password"), Some(js_pw));
    no_js.quit().await;

    // 3. The account made without JS signs in with it (only a digest sent).
    assert_eq!(
        sign_in(&with_js, &origin, plain_user, plain_pw).await,
        "/welcome",
        "a no-JS account signs in with JS"
    );
    assert_eq!(
        text(&with_js, "h1").await,
        format!("Welcome, {plain_name}!")
    );
    let posts = form_posts(&with_js, &origin, 3).await;
    assert_eq!(posts.len(), 3);
    assert_eq!(
        posts[2].value("password_digest"),
        Some(digest(plain_user, plain_pw).as_str())
    );
    assert!(posts[2].value("password").is_none());
    with_js.quit().await;

    // The server saw the plain fields only from the no-JS browser, and logged no password.
    let logged = server_forms(&app.log());
    let with_plain: Vec<&str> = logged
        .iter()
        .filter(|(_, names)| names.contains("password"))
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(
        with_plain,
        ["/sign-up", "/sign-in", "/sign-in"],
        "forms with a plain password: {logged:?}"
    );
    let sign_up_names: BTreeSet<String> = logged[2].1.clone();
    assert!(sign_up_names.contains("password_repeat"), "{logged:?}");
    let log = app.log();
    for pw in [js_pw, plain_pw] {
        for s in password_forms(pw) {
            assert!(
                !log.contains(&s),
                "the server log contains the password {s:?}"
            );
        }
    }
}
