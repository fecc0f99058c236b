//! Passkeys over HTTP (docs/behaviour.md §13.2) with a software authenticator in place of the
//! browser's: what the browser is asked for, a passkey registered, used to sign in (no
//! password, §4's lock neither consulted nor cleared) and removed; ceremonies single use,
//! expiring and bounded per address; the account routes' session and CSRF checks. The site is
//! reached as `http://localhost:PORT` (no `--public-url`): the RP ID is then `localhost`.
use serde_json::json;

use crate::both_backends;
use crate::common::soft_authenticator::Lies;
use crate::common::{Backend, Local, PASSKEY_PASSWORD as PASSWORD, TestApp, location};

both_backends!(
    a_passkey_registers_signs_in_and_is_removed,
    a_ceremony_is_used_once_and_expires,
    ceremonies_are_bounded_per_address,
);

#[tokio::test]
async fn the_browser_is_asked_for_a_resident_key_with_user_verification() {
    let app = TestApp::spawn(&[]);
    let site = Local::new(&app);
    let (c, token) = site.member("ann").await;
    let (status, started) = site.start_registration(&c, &token, "laptop").await;
    assert_eq!(status, 200);
    let pk = &started["publicKey"];
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], "ann");
    assert_eq!(started["ceremony"].as_str().unwrap().len(), 43);
    let (_, _, signin) = site.start_sign_in().await;
    assert_eq!(signin["publicKey"]["userVerification"], "required");
    assert_eq!(signin["publicKey"]["rpId"], "localhost");
    // Discoverable: no credentials listed, no username asked.
    assert!(
        signin["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    // The sign-in page offers the button, hidden until the script finds WebAuthn.
    let html = app
        .client()
        .get(app.url("/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"id="passkey-sign-in" hidden"#), "{html}");
}

#[tokio::test]
async fn a_bad_name_is_refused_and_without_a_relying_party_passkeys_are_off() {
    let app = TestApp::spawn(&[]);
    let site = Local::new(&app);
    let (c, token) = site.member("ann").await;
    for name in ["", "   ", &"x".repeat(65), "a\tb"] {
        let (status, body) = site
            .json(
                &c,
                "/account/passkeys/options",
                json!({"csrf_token": token, "name": name}),
            )
            .await;
        assert_eq!(status, 400, "{name:?}");
        assert!(body["fields"]["name"].is_string(), "{body}");
    }
    // Reached as 127.0.0.1 without --public-url there is no RP ID: 404, nothing stored.
    let plain = app.client();
    let token = crate::common::csrf_token(&app, &plain, "/sign-in").await;
    let r = plain
        .post(app.url("/sign-in/passkey/options"))
        .json(&json!({"csrf_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.query_i64("SELECT count(*) FROM webauthn_ceremonies"), 0);
}

async fn a_passkey_registers_signs_in_and_is_removed(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let site = Local::new(&app);
    let (c, token) = site.member("ann").await;
    let mut key = site.register(&c, &token, "laptop").await;
    let account = c
        .get(site.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("laptop"), "{account}");
    // The same authenticator again is excluded by the browser; its credential, refused.
    let (_, again) = site.start_registration(&c, &token, "again").await;
    let excluded = again["publicKey"]["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1);

    // Lock the username with wrong passwords: a passkey neither consults nor clears the lock.
    let other = site.client();
    for _ in 0..3 {
        let t = site.token(&other, "/sign-in").await;
        let r = site
            .form(
                &other,
                "/sign-in",
                &[
                    ("username", "ann"),
                    ("password", "wrong-password"),
                    ("csrf_token", &t),
                ],
            )
            .await;
        assert_eq!(r.status(), 401);
    }

    // Anonymous, sent to sign in on the way to /account (a signed `next`).
    let (anon, t, started) = site.start_sign_in().await;
    let to_sign_in = location(&anon.get(site.url("/account")).send().await.unwrap());
    let query: Vec<(String, String)> = url::Url::parse(&site.url(&to_sign_in))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let get = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let answer = key.sign(&started["publicKey"], &site.origin, &Lies::default());
    let (status, done) = site
        .json(
            &anon,
            "/sign-in/passkey",
            json!({"csrf_token": t, "ceremony": started["ceremony"], "credential": answer,
                   "next": get("next"), "sig": get("sig")}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redirect"], "/account");
    let page = anon.get(site.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Your account") && !page.contains(">never<"),
        "last used shown: {page}"
    );
    // Still locked for passwords, even the right one.
    let t = site.token(&other, "/sign-in").await;
    let r = site
        .form(
            &other,
            "/sign-in",
            &[
                ("username", "ann"),
                ("password", PASSWORD),
                ("csrf_token", &t),
            ],
        )
        .await;
    assert_eq!(r.status(), 429);

    // A forged `next` is ignored, as for a password.
    let (anon2, t2, started) = site.start_sign_in().await;
    let answer = key.sign(&started["publicKey"], &site.origin, &Lies::default());
    let (status, done) = site
        .json(
            &anon2,
            "/sign-in/passkey",
            json!({"csrf_token": t2, "ceremony": started["ceremony"], "credential": answer,
                   "next": "/account", "sig": "forged"}),
        )
        .await;
    assert_eq!((status, done["redirect"].as_str()), (200, Some("/welcome")));

    // Rename, then remove (the last one too).
    let id = app.query_i64("SELECT id FROM passkeys");
    let r = site
        .form(
            &c,
            &format!("/account/passkeys/{id}/rename"),
            &[("name", "work laptop"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/account?passkey=renamed")
    );
    assert_eq!(
        app.query_text("SELECT name FROM passkeys").as_deref(),
        Some("work laptop")
    );
    let r = site
        .form(
            &c,
            &format!("/account/passkeys/{id}/remove"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), location(&r).as_str()),
        (303, "/account?passkey=removed")
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM passkeys"), 0);

    // A removed passkey opens nothing.
    let (_, status, _) = site.sign_in_with(&mut key).await;
    assert_eq!(status, 401);

    let rows = app
        .audit_rows(|rows| rows.iter().any(|r| r.is("passkey_removed", "ok", "ann")))
        .await;
    for (event, outcome) in [
        ("passkey_added", "ok"),
        ("passkey_used", "ok"),
        ("passkey_removed", "ok"),
        ("passkey_used", "unknown"),
    ] {
        assert!(
            rows.iter()
                .any(|r| r.event == event && r.outcome == outcome),
            "{event}/{outcome} in {rows:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.is("sign_in", "ok", "ann") && r.detail.as_deref() == Some("passkey"))
    );
}

async fn a_ceremony_is_used_once_and_expires(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let site = Local::new(&app);
    let (c, token) = site.member("ann").await;
    let mut key = site.register(&c, &token, "laptop").await;
    let (anon, t, started) = site.start_sign_in().await;
    let answer = key.sign(&started["publicKey"], &site.origin, &Lies::default());
    let body = json!({"csrf_token": t, "ceremony": started["ceremony"], "credential": answer});
    let (first, _) = site.json(&anon, "/sign-in/passkey", body.clone()).await;
    assert_eq!(first, 200);
    // The same answer again: the ceremony is gone.
    let fresh = site.client();
    let t2 = site.token(&fresh, "/sign-in").await;
    let mut replay = body.clone();
    replay["csrf_token"] = json!(t2);
    let (second, err) = site.json(&fresh, "/sign-in/passkey", replay.clone()).await;
    assert_eq!(second, 410, "{err}");
    // Or under a new ceremony: its challenge differs.
    let (_, started2) = site
        .json(
            &fresh,
            "/sign-in/passkey/options",
            json!({"csrf_token": t2}),
        )
        .await;
    replay["ceremony"] = started2["ceremony"].clone();
    let (third, _) = site.json(&fresh, "/sign-in/passkey", replay).await;
    assert_eq!(third, 401);
    let still_anonymous = fresh.get(site.url("/account")).send().await.unwrap();
    assert_eq!(still_anonymous.status(), 303);

    // An expired ceremony is refused even with a right answer.
    let (anon, t, started) = site.start_sign_in().await;
    app.execute_sql("UPDATE webauthn_ceremonies SET expires_at = 1");
    let answer = key.sign(&started["publicKey"], &site.origin, &Lies::default());
    let (status, _) = site
        .finish_sign_in(&anon, &t, &started["ceremony"], answer)
        .await;
    assert_eq!(status, 410);
    // A registration ceremony cannot finish a sign-in (nor another user's registration).
    let (_, reg) = site.start_registration(&c, &token, "phone").await;
    let (anon, t, started) = site.start_sign_in().await;
    let answer = key.sign(&started["publicKey"], &site.origin, &Lies::default());
    let (status, _) = site
        .finish_sign_in(&anon, &t, &reg["ceremony"], answer)
        .await;
    assert_eq!(status, 410);
}

async fn ceremonies_are_bounded_per_address(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let site = Local::new(&app);
    let c = site.client();
    let t = site.token(&c, "/sign-in").await;
    for _ in 0..20 {
        let (status, _) = site
            .json(&c, "/sign-in/passkey/options", json!({"csrf_token": t}))
            .await;
        assert_eq!(status, 200);
    }
    let r = c
        .post(site.url("/sign-in/passkey/options"))
        .json(&json!({"csrf_token": t}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        app.query_i64("SELECT count(*) FROM webauthn_ceremonies"),
        20
    );
    // Expired ones make room.
    app.execute_sql("UPDATE webauthn_ceremonies SET expires_at = 1");
    let (status, _) = site
        .json(&c, "/sign-in/passkey/options", json!({"csrf_token": t}))
        .await;
    assert_eq!(status, 200);
}
