//! Passkeys' account routes over HTTP (docs/behaviour.md §13.2): session, CSRF and ownership
//! checks, `user show`, and the relying party taken from `--public-url`.

use serde_json::json;

use crate::common::soft_authenticator::Lies;
use crate::common::{Local, TestApp, location};

#[tokio::test]
async fn account_passkey_routes_need_a_session_csrf_and_ownership() {
    let app = TestApp::spawn(&[]);
    let site = Local::new(&app);
    let (ann, ann_token) = site.member("ann").await;
    site.register(&ann, &ann_token, "laptop").await;
    let id = app.query_i64("SELECT id FROM passkeys");
    let (bob, bob_token) = site.member("bob").await;

    // JSON: no token or another session's → 403; wrong media type → 415; anonymous → 401.
    let (status, _) = site
        .json(&bob, "/account/passkeys/options", json!({"name": "x"}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = site.start_registration(&bob, &ann_token, "x").await;
    assert_eq!(status, 403);
    let r = bob
        .post(site.url("/account/passkeys/options"))
        .form(&[("csrf_token", bob_token.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let anon = site.client();
    let anon_token = site.token(&anon, "/sign-in").await;
    let (status, _) = site.start_registration(&anon, &anon_token, "x").await;
    assert_eq!(status, 401);
    let (status, _) = site
        .json(&anon, "/sign-in/passkey/options", json!({}))
        .await;
    assert_eq!(status, 403);
    // Another site's page cannot start one.
    let r = anon
        .post(site.url("/sign-in/passkey/options"))
        .header("origin", "https://evil.example")
        .json(&json!({"csrf_token": anon_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Forms: CSRF first, then the owner.
    let rename = format!("/account/passkeys/{id}/rename");
    let remove = format!("/account/passkeys/{id}/remove");
    let r = site.form(&ann, &remove, &[("csrf_token", "nope")]).await;
    assert_eq!(r.status(), 403);
    let r = site
        .form(&bob, &remove, &[("csrf_token", &bob_token)])
        .await;
    assert_eq!(r.status(), 404);
    let r = site
        .form(
            &bob,
            &rename,
            &[("csrf_token", &bob_token), ("name", "mine")],
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = site
        .form(&ann, &rename, &[("csrf_token", &ann_token), ("name", " ")])
        .await;
    assert_eq!(r.status(), 400);
    let r = site
        .form(&anon, &remove, &[("csrf_token", &anon_token)])
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with("/sign-in?next="),
        "{}",
        location(&r)
    );
    assert_eq!(
        app.query_text("SELECT name FROM passkeys").as_deref(),
        Some("laptop")
    );
    let r = anon.get(site.url(&remove)).send().await.unwrap();
    assert_eq!(r.status(), 405);

    // `user show` counts and names them.
    let shown = app.admin_ok(&["user", "show", "ann"], "");
    assert!(
        shown.stdout.contains("passkeys: 1") && shown.stdout.contains("laptop"),
        "{}",
        shown.stdout
    );
}

#[tokio::test]
async fn the_relying_party_follows_public_url() {
    let app = TestApp::spawn(&["--public-url", "https://id.example.test/gate/"]);
    // Reached at 127.0.0.1; the browser would be at --public-url's origin.
    let site = Local {
        app: &app,
        base: app.address.clone(),
        origin: "https://id.example.test".into(),
    };
    let (c, token) = site.member("ann").await;
    let mut key = site.register(&c, &token, "laptop").await;
    assert_eq!(key.rp_id, "id.example.test");
    let (anon, t, started) = site.start_sign_in().await;
    assert_eq!(started["publicKey"]["rpId"], "id.example.test");
    // An answer signed for another origin (the address the server was reached at) is refused.
    let wrong = Lies {
        origin: Some(app.address.clone()),
        ..Lies::default()
    };
    let answer = key.sign(&started["publicKey"], &site.origin, &wrong);
    let (status, _) = site
        .finish_sign_in(&anon, &t, &started["ceremony"], answer)
        .await;
    assert_eq!(status, 401);
    let (_, status, _) = site.sign_in_with(&mut key).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_ip_address_public_url_turns_passkeys_off_with_a_warning() {
    let app = TestApp::spawn(&["--public-url", "http://127.0.0.1:9"]);
    assert!(app.log_contains("passkeys are off").await, "{}", app.log());
    let c = app.client();
    let token = crate::common::csrf_token(&app, &c, "/sign-in").await;
    let r = c
        .post(app.url("/sign-in/passkey/options"))
        .json(&json!({"csrf_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// §12: ceremony state lives in the database, so a ceremony begun on one instance finishes on
/// another, and is still used only once.
#[tokio::test]
async fn a_ceremony_begun_on_one_instance_finishes_on_another() {
    let flags = ["--public-url", "https://id.example.test"];
    let a = TestApp::spawn_on(crate::common::Backend::Postgres, &flags);
    let b = a.spawn_beside(&flags);
    let on = |app| Local {
        app,
        base: app.address.clone(),
        origin: "https://id.example.test".into(),
    };
    let (site_a, site_b) = (on(&a), on(&b));
    let (c, token) = site_a.member("ann").await;
    let (status, started) = site_a.start_registration(&c, &token, "laptop").await;
    assert_eq!(status, 200);
    let (mut key, answer) = crate::common::soft_authenticator::SoftKey::register(
        &started["publicKey"],
        &site_a.origin,
        &Lies::default(),
    );
    let body = json!({"csrf_token": token, "ceremony": started["ceremony"], "credential": answer});
    let (status, _) = site_b.json(&c, "/account/passkeys", body.clone()).await;
    assert_eq!(status, 201);
    let (status, _) = site_a.json(&c, "/account/passkeys", body).await;
    assert_eq!(status, 410, "taken once across instances");

    let (anon, t, started) = site_b.start_sign_in().await;
    let answer = key.sign(&started["publicKey"], &site_b.origin, &Lies::default());
    let body = json!({"csrf_token": t, "ceremony": started["ceremony"], "credential": answer});
    let (status, _) = site_a.json(&anon, "/sign-in/passkey", body.clone()).await;
    assert_eq!(status, 200);
    let (status, _) = site_b.json(&anon, "/sign-in/passkey", body).await;
    assert_eq!(status, 410);
}
