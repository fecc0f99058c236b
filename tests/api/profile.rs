//! Editing one's own details (docs/behaviour.md §11.3): the full name freely; a new email only
//! with the current password, pending until confirmed through the link mailed to it (the old
//! address stays and gets a notice); an address another account has, in any case, is a 409;
//! `PATCH /api/me` answers the same way.

use std::time::Duration;

use crate::both_backends;
use crate::common::*;

both_backends!(
    a_new_email_needs_the_password_and_stays_pending_until_confirmed,
    the_full_name_changes_alone_and_bad_names_are_400,
    patch_me_answers_200_400_401_and_409,
);

const PASSWORD: &str = "correct horse battery";

fn spawn_mailing(b: Backend, port: u16) -> TestApp {
    TestApp::spawn_on(
        b,
        &[
            "--smtp-url",
            &smtp_url(port),
            "--public-url",
            "http://login.test",
            "--mail-retry-base",
            "100ms",
        ],
    )
}

async fn create(app: &TestApp, name: &str, email: &str) {
    let r = app
        .client()
        .post(app.url("/api/users"))
        .json(&serde_json::json!({"username": name, "password": PASSWORD, "email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn profile(
    app: &TestApp,
    client: &reqwest::Client,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf_token(app, client, "/account").await;
    post_form(app, client, "/account/profile", &token, fields).await
}

fn verify_path(mail: &Mail) -> String {
    let text = mail.text.as_deref().unwrap();
    let start = text.find("http://login.test/verify-email/").unwrap();
    let url: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url.strip_prefix("http://login.test").unwrap().to_owned()
}

async fn a_new_email_needs_the_password_and_stays_pending_until_confirmed(b: Backend) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port);
    create(&app, "other", "taken@example.org").await;
    let client = app.client();
    sign_up(&app, &client, "dora", PASSWORD).await;
    // Give dora an address first (no old one: nothing to notify).
    let r = profile(
        &app,
        &client,
        &[
            ("full_name", "Dora D."),
            ("email", "dora@example.org"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?email=pending");
    // `other`'s own sign-up mail came first.
    let mails = sink.wait_for(2, Duration::from_secs(15)).await;
    let first = mails.iter().find(|m| m.to == "dora@example.org").unwrap();
    let r = submit_form(&app, &client, &verify_path(first), &verify_path(first), &[]).await;
    assert_eq!(r.status(), 200);
    let page = page_text(&app, &client, "/account").await;
    assert!(
        page.contains("Dora D.") && page.contains("dora@example.org"),
        "{page}"
    );

    // Without the password, or with a wrong one: refused, nothing pending.
    let r = profile(&app, &client, &[("email", "new@example.org")]).await;
    assert_eq!(r.status(), 400);
    let r = profile(
        &app,
        &client,
        &[
            ("email", "new@example.org"),
            ("current_password", "wrong password"),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    // Another account's address, in another case: 409.
    let r = profile(
        &app,
        &client,
        &[
            ("email", "TAKEN@example.org"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 409);
    // A bad address: 400.
    let r = profile(
        &app,
        &client,
        &[("email", "not an address"), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 400);

    let r = profile(
        &app,
        &client,
        &[("email", "new@example.org"), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let mails = sink.wait_for(4, Duration::from_secs(15)).await;
    let to_new = mails
        .iter()
        .find(|m| m.to == "new@example.org")
        .expect("a link to the new address");
    let notice = mails.iter().find(|m| {
        m.to == "dora@example.org" && !m.text.as_deref().unwrap_or("").contains("/verify-email/")
    });
    assert!(notice.is_some(), "the old address gets a notice: {mails:?}");

    // Pending: the old address stays the account's (and the apps').
    let show = app.admin_ok(&["user", "show", "dora"], "");
    assert!(
        show.stdout.contains("email: dora@example.org (verified)"),
        "{show:?}"
    );
    assert!(
        show.stdout.contains("pending email: new@example.org"),
        "{show:?}"
    );
    let r = client.get(app.url("/auth/request")).send().await.unwrap();
    assert_eq!(r.headers()["remote-email"], "dora@example.org");

    // Confirmed through the mail sent to the new address: it takes over, verified.
    let path = verify_path(to_new);
    let r = submit_form(&app, &app.client(), &path, &path, &[]).await;
    assert_eq!(r.status(), 200);
    let show = app.admin_ok(&["user", "show", "dora"], "");
    assert!(
        show.stdout.contains("email: new@example.org (verified)"),
        "{show:?}"
    );
    assert!(!show.stdout.contains("pending email"));
    let r = client.get(app.url("/auth/request")).send().await.unwrap();
    assert_eq!(r.headers()["remote-email"], "new@example.org");
}

async fn the_full_name_changes_alone_and_bad_names_are_400(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    sign_up(&app, &client, "emil", PASSWORD).await;
    let r = profile(&app, &client, &[("full_name", "Émil Ñ. <b>")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?profile=1");
    let page = page_text(&app, &client, "/account").await;
    assert!(page.contains("<dd>Émil Ñ. &#60;b&#62;</dd>"), "{page}");
    let r = profile(&app, &client, &[("full_name", &"x".repeat(101))]).await;
    assert_eq!(r.status(), 400);
    // Without mail, a new address is taken at once, unconfirmed.
    let r = profile(
        &app,
        &client,
        &[
            ("email", "emil@example.org"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let show = app.admin_ok(&["user", "show", "emil"], "");
    assert!(
        show.stdout
            .contains("email: emil@example.org (not verified)"),
        "{show:?}"
    );
}

async fn patch_me_answers_200_400_401_and_409(b: Backend) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port);
    create(&app, "fritz", "fritz@example.org").await;
    create(&app, "gert", "gert@example.org").await;
    let client = app.client();
    let r = client
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"username": "fritz", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let patch = |body: serde_json::Value| {
        let req = client.patch(app.url("/api/me")).json(&body);
        async move { req.send().await.unwrap() }
    };
    let r = patch(serde_json::json!({"full_name": "Fritz F."})).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["full_name"], "Fritz F.");
    assert_eq!(
        patch(serde_json::json!({"email": "f2@example.org"}))
            .await
            .status(),
        400
    );
    assert_eq!(
        patch(serde_json::json!({"email": "f2@example.org", "password": "nope nope"}))
            .await
            .status(),
        401
    );
    assert_eq!(
        patch(serde_json::json!({"email": "Gert@Example.org", "password": PASSWORD}))
            .await
            .status(),
        409
    );
    let r = patch(serde_json::json!({"email": "f2@example.org", "password": PASSWORD})).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["email"], "fritz@example.org",
        "the old address stays until confirmed"
    );
    assert_eq!(body["pending_email"], "f2@example.org");
    assert_eq!(
        app.client()
            .patch(app.url("/api/me"))
            .json(&serde_json::json!({"full_name": "x"}))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}
