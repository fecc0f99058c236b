//! The two ways a password digest is made (docs/behaviour.md §2): in the page (Web Crypto or
//! the page's own SHA-512, checked against the spec's vectors and NIST's examples) and, without
//! JavaScript, on the server; both must give the same account.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::ONE_BROWSER;
use crate::common::TestApp;
use crate::driver::{Browser, Js};
use crate::site::{
    digest, form_posts, password_forms, server_forms, sha512_hex, sign_out, submit, text,
};

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

/// The page footer's text as shown.
async fn footer_text(b: &Browser) -> serde_json::Value {
    b.exec(
        "return document.querySelector('.site-footer').innerText.trim()",
        json!([]),
    )
    .await
}

/// Each of the `kinds` of `digestWith` gives every vector's digest on the page open in `b`.
async fn digests_match(b: &Browser, kinds: &[&str], host: &str) {
    for (u, p, want) in VECTORS {
        for kind in kinds {
            let got = js_digest(b, kind, u, p).await;
            assert_eq!(
                got.as_deref(),
                Ok(want),
                "{kind} digest of ({u:?}, {p:?}) on {host}"
            );
        }
    }
}

/// The sign-in page at `origin` as gatehouse.js sees it: the origin, whether it is a secure
/// context, whether the script uses Web Crypto, and what `crypto.subtle` is.
async fn crypto_context(b: &Browser, origin: &str) -> serde_json::Value {
    b.goto(&format!("{origin}/sign-in")).await;
    b.wait_js(
        "gatehouse.js",
        "return window.Gatehouse ? [location.origin, window.isSecureContext, Gatehouse.usesWebCrypto, typeof crypto.subtle] : null",
        json!([]),
    )
    .await
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
    assert_eq!(
        crypto_context(&b, &origin).await,
        json!([origin, true, true, "object"]),
        "127.0.0.1 is a secure context"
    );
    digests_match(&b, &["webcrypto", "fallback", "auto"], "127.0.0.1").await;
    check_js_sha512(&b, &origin).await;

    // Not a secure context: no Web Crypto; digest() must use the fallback and still agree.
    let origin = format!("http://gatehouse.test:{}", app.port);
    assert_eq!(
        crypto_context(&b, &origin).await,
        json!([origin, false, false, "undefined"]),
        "gatehouse.test is not a secure context"
    );
    digests_match(&b, &["auto", "fallback"], "gatehouse.test").await;
    for (u, p, _) in VECTORS {
        let webcrypto = js_digest(&b, "webcrypto", u, p).await;
        assert!(
            webcrypto.is_err(),
            "digestWith('webcrypto') must reject without Web Crypto, got {webcrypto:?}"
        );
    }
    check_js_sha512(&b, &origin).await;

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
    with_js.goto_scripted(&format!("{origin}/sign-up")).await;
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
    let footer = footer_text(&with_js).await;
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
    let footer = footer_text(&no_js).await;
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
