//! The JSON API (docs/behaviour.md §7).

use serde_json::{Value, json};

use crate::both_backends;
use crate::common::*;

both_backends!(
    create_user_returns_201_without_a_hash_or_session,
    create_user_reports_fields_conflicts_and_ambiguity,
    session_lifecycle_over_the_api,
    api_sign_in_with_a_digest_and_the_lock,
);

async fn post_json(
    c: &reqwest::Client,
    url: String,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v, headers)
}

async fn create_user_returns_201_without_a_hash_or_session(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    let (status, v, headers) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": " Ada ", "password": "analytical-engine", "email": "ada@example.org", "full_name": "Ada Lovelace"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["username"], "ada");
    assert_eq!(v["email"], "ada@example.org");
    assert_eq!(v["full_name"], "Ada Lovelace");
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    let text = v.to_string();
    assert!(!text.contains("argon2") && !text.contains("hash"), "{text}");
    assert!(!headers.contains_key("set-cookie"), "no session created");
    assert_eq!(app.query_i64("SELECT count(*) FROM sessions"), 0);
}

async fn create_user_reports_fields_conflicts_and_ambiguity(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    let (status, v, _) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "a", "password": "short", "email": "bad"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["error"].is_string());
    for field in ["username", "password", "email"] {
        assert!(v["fields"][field].is_string(), "{field}: {v}");
    }
    let (status, v, _) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "both", "password": "long-enough", "password_digest": "x".repeat(88)}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let (status, _, _) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "dup", "password": "dup-password"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, v, _) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "DUP", "password": "dup-password"}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(v["field"], "username");
    let (status, v, _) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "withdigest", "password_digest": "not-base64"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(v["fields"]["password_digest"].is_string(), "{v}");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    for body in [
        "{",
        "[]",
        "null",
        "{\"username\": 5}",
        "{\"username\":\"a\",\"username\":\"b\"}",
        "\u{0}",
    ] {
        for path in ["/api/users", "/api/session"] {
            let r = c
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path} {body:?}");
            let v: Value = r.json().await.unwrap();
            assert!(v["error"].is_string());
        }
    }
    let r = c
        .post(app.url("/api/users"))
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn session_lifecycle_over_the_api(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "curl", "password": "curl-password", "full_name": "Curl User"}),
    )
    .await;
    assert_eq!(
        c.get(app.url("/api/me")).send().await.unwrap().status(),
        401
    );
    let (status, v, _) = post_json(
        &c,
        app.url("/api/session"),
        json!({"username": "curl", "password": "wrong-password"}),
    )
    .await;
    assert_eq!(status, 401);
    assert!(v["error"].is_string());
    let (status, _, headers) = post_json(
        &c,
        app.url("/api/session"),
        json!({"username": "curl", "password": "curl-password"}),
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        headers
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("session="))
    );
    let me: Value = c
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "curl");
    assert_eq!(me["full_name"], "Curl User");
    assert!(me.get("password_hash").is_none());
    let r = c.delete(app.url("/api/session")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get(app.url("/api/me")).send().await.unwrap().status(),
        401
    );
    // Always 204, even without a session.
    assert_eq!(
        c.delete(app.url("/api/session"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

async fn api_sign_in_with_a_digest_and_the_lock(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    let digest =
        "qfHFJMsdCQvQ1SBaXfnadH82UaLiL6vuRP1Pc3S1eotaTmbLir/Tklt5LD8FtCL71N2LTzfdtyr7oZmONwduEQ==";
    let (status, _, _) = post_json(
        &c,
        app.url("/api/users"),
        json!({"username": "alice", "password_digest": digest}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = post_json(
        &c,
        app.url("/api/session"),
        json!({"username": "alice", "password": "correct horse battery staple"}),
    )
    .await;
    assert_eq!(status, 204, "the plain password digests to the same bytes");
    for _ in 0..3 {
        let (status, _, _) = post_json(
            &c,
            app.url("/api/session"),
            json!({"username": "alice", "password": "nope-nope"}),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, v, headers) = post_json(
        &c,
        app.url("/api/session"),
        json!({"username": "alice", "password_digest": digest}),
    )
    .await;
    assert_eq!(status, 429);
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(v["error"].is_string());
    let (status, _, _) = post_json(
        &c,
        app.url("/api/session"),
        json!({"username": "alice", "password": "x", "password_digest": digest}),
    )
    .await;
    assert_eq!(status, 400, "both forms of the password");
}
