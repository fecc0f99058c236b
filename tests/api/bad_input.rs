//! Bad input and CSRF: clear 4xx answers in the order of docs/behaviour.md §3, never a 500
//! (docs/behaviour.md §3, §6).

use crate::common::*;

async fn raw_post(
    app: &TestApp,
    c: &reqwest::Client,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    c.post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn oversized_bodies_are_413_first() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let big = vec![b'a'; 64 * 1024 + 1];
    for path in [
        "/sign-in",
        "/sign-up",
        "/account/password",
        "/sign-out",
        "/api/users",
        "/api/session",
    ] {
        // Even with the wrong media type and no CSRF token, size is checked first.
        let r = raw_post(&app, &c, path, "text/plain", big.clone()).await;
        assert_eq!(r.status(), 413, "{path}");
    }
    // A no-JS password change with three 1024-character passwords fits.
    let token = csrf_token(&app, &c, "/sign-in").await;
    let long = "p".repeat(1024);
    let r = post_form(
        &app,
        &c,
        "/sign-in",
        &token,
        &[
            ("username", "x"),
            ("password", &long),
            ("junk", &"j".repeat(3000)),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn wrong_media_type_is_415_before_parse_and_csrf() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    for path in ["/sign-in", "/sign-up"] {
        let r = raw_post(
            &app,
            &c,
            path,
            "application/json",
            b"{\"username\":\"x\"}".to_vec(),
        )
        .await;
        assert_eq!(r.status(), 415, "{path}");
        let r = raw_post(
            &app,
            &c,
            path,
            "multipart/form-data; boundary=x",
            b"--x--".to_vec(),
        )
        .await;
        assert_eq!(r.status(), 415, "{path}");
    }
    for path in ["/api/users", "/api/session"] {
        let r = raw_post(&app, &c, path, FORM, b"username=x".to_vec()).await;
        assert_eq!(r.status(), 415, "{path}");
        let r = c.post(app.url(path)).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 415, "{path} without content type");
    }
}

#[tokio::test]
async fn unparseable_forms_are_400_before_csrf() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    for body in [
        &b"username=a&username=b"[..],
        b"username=%ff%fe",
        b"username=\xff",
        b"username=%zz",
        b"username=%",
    ] {
        let r = raw_post(&app, &c, "/sign-in", FORM, body.to_vec()).await;
        assert_eq!(r.status(), 400, "{:?}", String::from_utf8_lossy(body));
        let text = r.text().await.unwrap();
        assert!(
            text.contains("more than once") || text.contains("UTF-8") || text.contains("%-escape"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn missing_wrong_or_foreign_csrf_tokens_are_403() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "csrfy", "csrfy-password").await;
    let token = csrf_token(&app, &c, "/sign-in").await;
    let fields = [("username", "csrfy"), ("password", "csrfy-password")];
    // No token.
    let r = c
        .post(app.url("/sign-in"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_answer(r, 403, "reload the page").await;
    // A wrong token.
    let r = post_form(
        &app,
        &c,
        "/sign-in",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &fields,
    )
    .await;
    assert_eq!(r.status(), 403);
    // Another browser's token (bound to its own cookie).
    let other = app.client();
    let other_token = csrf_token(&app, &other, "/sign-in").await;
    let r = post_form(&app, &c, "/sign-in", &other_token, &fields).await;
    assert_eq!(r.status(), 403);
    // A valid token without its cookie.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = bare
        .post(app.url("/sign-in"))
        .form(&[
            ("username", "csrfy"),
            ("password", "csrfy-password"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Signed-in forms: a sign-out without a token.
    let r = c
        .post(app.url("/sign-out"))
        .form(&[("x", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        c.get(app.url("/welcome")).send().await.unwrap().status(),
        200,
        "still signed in"
    );
    // And the right token works.
    assert_eq!(
        post_form(&app, &c, "/sign-in", &token, &fields)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_foreign_or_null_origin_is_refused() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let token = csrf_token(&app, &c, "/sign-in").await;
    let fields = [
        ("username", "nobody"),
        ("password", "whatever-pw"),
        ("csrf_token", token.as_str()),
    ];
    for origin in ["null", "http://evil.example", "https://127.0.0.1:1"] {
        let r = c
            .post(app.url("/sign-in"))
            .header("origin", origin)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{origin}");
    }
    let own = app.address.clone();
    let r = c
        .post(app.url("/sign-in"))
        .header("origin", own)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "own origin is fine");
    // The API too.
    let r = c
        .post(app.url("/api/session"))
        .header("origin", "http://evil.example")
        .json(&serde_json::json!({"username": "nobody", "password": "whatever-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn public_url_sets_the_origin() {
    let app = TestApp::spawn(&["--public-url", "https://login.example.com"]);
    let c = app.client();
    let token = csrf_token(&app, &c, "/sign-in").await;
    let fields = [
        ("username", "nobody"),
        ("password", "whatever-pw"),
        ("csrf_token", token.as_str()),
    ];
    let r = c
        .post(app.url("/sign-in"))
        .header("origin", app.address.clone())
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url("/sign-in"))
        .header("origin", "https://login.example.com")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_malformed_digest_is_400_but_a_lock_answers_first() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let token = csrf_token(&app, &c, "/sign-in").await;
    let malformed = [("username", "target"), ("password_digest", "abc")];
    let r = post_form(&app, &c, "/sign-in", &token, &malformed).await;
    assert_eq!(r.status(), 400);
    for _ in 0..3 {
        post_form(
            &app,
            &c,
            "/sign-in",
            &token,
            &[("username", "target"), ("password", "wrong-wrong")],
        )
        .await;
    }
    let r = post_form(&app, &c, "/sign-in", &token, &malformed).await;
    assert_eq!(r.status(), 429, "429 comes before field rules");
}

#[tokio::test]
async fn large_request_headers_are_accepted() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = c
        .get(app.url("/sign-in"))
        .header("x-padding", "p".repeat(8 * 1024))
        .header("cookie", format!("junk={}", "c".repeat(6 * 1024)))
        .header("user-agent", "u".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn hostile_inputs_are_escaped_when_echoed() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let token = csrf_token(&app, &c, "/sign-up").await;
    let evil = "<script>alert(1)</script>\"'";
    let r = post_form(
        &app,
        &c,
        "/sign-up",
        &token,
        &[
            ("username", evil),
            ("email", evil),
            ("full_name", evil),
            ("password", "pw"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    let r = sign_in(&app, &c, evil, "pw-pw-pw-pw").await;
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("<script>alert"));
}
