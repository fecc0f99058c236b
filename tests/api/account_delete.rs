//! Deleting one's own account (docs/behaviour.md §11.3): `POST /account/delete` and
//! `DELETE /api/me` need the current password under the §4 lock, end every session, keep the
//! audit trail, and retire the username for good (whoever deletes it).

use crate::both_backends;
use crate::common::*;

both_backends!(
    the_account_page_deletes_with_the_password_and_retires_the_name,
    wrong_passwords_count_toward_the_lock,
    the_api_deletes_me_with_204_401_and_a_never_repeated_id,
    an_admin_deletion_retires_the_name_too,
);

const PASSWORD: &str = "correct horse battery";

async fn delete_form(app: &TestApp, client: &reqwest::Client, password: &str) -> reqwest::Response {
    let token = csrf_token(app, client, "/account").await;
    post_form(
        app,
        client,
        "/account/delete",
        &token,
        &[("current_password", password)],
    )
    .await
}

async fn the_account_page_deletes_with_the_password_and_retires_the_name(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    sign_up(&app, &client, "vera", PASSWORD).await;
    let other = app.client();
    assert_eq!(sign_in(&app, &other, "vera", PASSWORD).await.status(), 303);
    let page = page_text(&app, &client, "/account").await;
    assert!(page.contains("action=\"/account/delete\""), "{page}");

    // Wrong, then missing: refused, nothing deleted.
    let r = delete_form(&app, &client, "not my password").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Your current password is incorrect.")
    );
    let r = delete_form(&app, &client, "").await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        client
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let r = delete_form(&app, &client, PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("session=;"));
    assert!(cleared, "the session cookie is expired");
    let notice = page_text(&app, &client, "/sign-in").await;
    assert!(notice.contains("Your account was deleted."), "{notice}");

    // Every session ended; the name cannot sign in nor be taken again, in any case.
    assert_eq!(
        other
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        sign_in(&app, &app.client(), "vera", PASSWORD)
            .await
            .status(),
        401
    );
    for name in ["vera", "VERA"] {
        let r = sign_up_form(&app, &app.client(), name, PASSWORD).await;
        assert_eq!(r.status(), 409, "{name}");
    }
    let r = app
        .client()
        .post(app.url("/api/users"))
        .json(&serde_json::json!({"username": "vera", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // The audit trail keeps the user's events, the deletion included.
    let rows = app
        .audit_rows(|rows| rows.iter().any(|r| r.is("account_delete", "ok", "vera")))
        .await;
    assert!(rows.iter().any(|r| r.is("sign_in", "ok", "vera")));
    assert!(rows.iter().any(|r| r.is("account_delete", "ok", "vera")));
}

async fn wrong_passwords_count_toward_the_lock(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    sign_up(&app, &client, "walt", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            delete_form(&app, &client, "wrong password!").await.status(),
            401
        );
    }
    let r = delete_form(&app, &client, PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        client
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn the_api_deletes_me_with_204_401_and_a_never_repeated_id(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    let r = client
        .post(app.url("/api/users"))
        .json(&serde_json::json!({"username": "xavi", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"username": "xavi", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let id_before = app.query_i64("SELECT id FROM users WHERE username = 'xavi'");

    let delete = |body: serde_json::Value| {
        let req = client.delete(app.url("/api/me")).json(&body);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(
        delete(serde_json::json!({"password": "wrong password!"}))
            .await
            .status(),
        401
    );
    assert_eq!(delete(serde_json::json!({})).await.status(), 400);
    let r = delete(serde_json::json!({"password": PASSWORD})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        client
            .get(app.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Anonymous: 401.
    let r = app
        .client()
        .delete(app.url("/api/me"))
        .json(&serde_json::json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A new account never gets the deleted one's id (Remote-User-Id never repeats).
    let r = app
        .client()
        .post(app.url("/api/users"))
        .json(&serde_json::json!({"username": "yoko", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id_after = app.query_i64("SELECT id FROM users WHERE username = 'yoko'");
    assert!(id_after > id_before);
}

async fn an_admin_deletion_retires_the_name_too(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    app.admin_ok(&["user", "add", "zora"], "some-long-password\n");
    app.admin_ok(&["user", "delete", "zora"], "");
    let run = app.admin(&["user", "add", "zora"], "some-long-password\n");
    assert_ne!(run.code, 0, "{run:?}");
    let r = sign_up_form(&app, &app.client(), "zora", PASSWORD).await;
    assert_eq!(r.status(), 409);
}
