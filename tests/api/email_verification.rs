//! Email verification (docs/behaviour.md §11.3) against a real SMTP server: a sign-up with an
//! address gets a confirmation link by mail; opening it never confirms, its button does; the
//! account page, `user show` and forward-auth's `Remote-Email` follow the confirmed state; a
//! resend supersedes the old link within an hourly budget.

use std::time::Duration;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";

/// A server mailing through the sink on `port`, links on http://login.test.
fn spawn_mailing(port: u16) -> TestApp {
    TestApp::spawn(&[
        "--smtp-url",
        &smtp_url(port),
        "--public-url",
        "http://login.test",
        "--mail-retry-base",
        "100ms",
    ])
}

/// The path of the `/verify-email/…` link in a delivered mail's text.
fn link_path(mail: &Mail) -> String {
    let text = mail.text.as_deref().expect("a text part");
    let start = text
        .find("http://login.test/verify-email/")
        .unwrap_or_else(|| panic!("no link in:\n{text}"));
    let url: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url.strip_prefix("http://login.test").unwrap().to_owned()
}

async fn sign_up_with_email(app: &TestApp, client: &reqwest::Client, name: &str, email: &str) {
    let r = submit_form(
        app,
        client,
        "/sign-up",
        "/sign-up",
        &[
            ("username", name),
            ("email", email),
            ("password", PASSWORD),
            ("password_repeat", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
}

async fn remote_email(app: &TestApp, client: &reqwest::Client) -> String {
    let r = client.get(app.url("/auth/request")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["remote-email"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_sign_up_address_is_confirmed_through_the_mailed_link() {
    let sink = SmtpSink::start();
    let app = spawn_mailing(sink.port);
    let client = app.client();
    sign_up_with_email(&app, &client, "ada", "Ada@Example.org").await;
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, "Ada@Example.org");
    assert!(mail[0].html.is_some(), "text and HTML parts");
    let path = link_path(&mail[0]);

    // Not confirmed yet: the account page says so, apps get no address.
    let page = page_text(&app, &client, "/account").await;
    assert!(page.contains("not verified"), "{page}");
    assert!(page.contains("action=\"/account/verify-email\""));
    assert_eq!(remote_email(&app, &client).await, "");

    // Opening the link (twice, as a mail scanner might) confirms nothing.
    let anon = app.client();
    for _ in 0..2 {
        let r = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert!(r.text().await.unwrap().contains("Confirm this address"));
    }
    assert_eq!(remote_email(&app, &client).await, "");

    // The button does, from any browser (the link is the proof).
    let r = submit_form(&app, &anon, &path, &path, &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("is confirmed"));
    let page = page_text(&app, &client, "/account").await;
    assert!(page.contains(">verified<"), "{page}");
    assert!(!page.contains("action=\"/account/verify-email\""));
    assert_eq!(remote_email(&app, &client).await, "Ada@Example.org");
    let show = app.admin_ok(&["user", "show", "ada"], "");
    assert!(
        show.stdout.contains("email: Ada@Example.org (verified)"),
        "{show:?}"
    );
    let list = app.admin_ok(&["user", "list"], "");
    assert!(list.stdout.contains("\tAda@Example.org\tyes\t"), "{list:?}");

    // Used: 410.
    assert_eq!(anon.get(app.url(&path)).send().await.unwrap().status(), 410);
    assert_eq!(
        anon.get(app.url("/verify-email/nonsense"))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    // Nothing of the link in the log.
    let token = path.rsplit('/').next().unwrap();
    let log = app.log();
    let leak: Vec<&str> = log.lines().filter(|l| l.contains(token)).collect();
    assert!(leak.is_empty(), "{leak:?}");
}

#[tokio::test]
async fn a_resend_supersedes_the_old_link_within_an_hourly_budget() {
    let sink = SmtpSink::start();
    let app = spawn_mailing(sink.port);
    let client = app.client();
    sign_up_with_email(&app, &client, "bert", "bert@example.org").await;
    let first = link_path(&sink.wait_for(1, Duration::from_secs(15)).await[0]);

    let resend = |client: reqwest::Client| {
        let app = &app;
        async move {
            let token = csrf_token(app, &client, "/account").await;
            post_form(app, &client, "/account/verify-email", &token, &[]).await
        }
    };
    let r = resend(client.clone()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?verify=sent");
    // The mailbox does not keep delivery order: the new link is the one that is not `first`.
    let mails = sink.wait_for(2, Duration::from_secs(15)).await;
    let links: Vec<String> = mails.iter().map(link_path).collect();
    assert!(links.contains(&first), "{links:?}");
    let second = links
        .iter()
        .find(|l| **l != first)
        .cloned()
        .expect("a second, different link");
    assert_eq!(
        app.client()
            .get(app.url(&first))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    assert_eq!(
        app.client()
            .get(app.url(&second))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Three resends an hour; the fourth answers the same and mails nothing.
    for _ in 0..3 {
        assert_eq!(resend(client.clone()).await.status(), 303);
    }
    let mails = sink.wait_for(4, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(sink.messages().len(), 4, "{mails:?}");
}

#[tokio::test]
async fn without_mail_an_address_stays_unconfirmed_and_no_button_shows() {
    let app = TestApp::spawn(&[]);
    let client = app.client();
    sign_up_with_email(&app, &client, "cleo", "cleo@example.org").await;
    let page = page_text(&app, &client, "/account").await;
    assert!(page.contains("not verified"), "{page}");
    assert!(!page.contains("action=\"/account/verify-email\""));
    let outbox: i64 = app
        .db()
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(outbox, 0);
}

#[tokio::test]
async fn required_verification_keeps_a_user_out_until_the_address_is_confirmed() {
    // Refused without mail.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.database");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--email-verification",
            "required",
            "--database",
        ])
        .arg(&db)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--email-verification required needs"));

    let sink = SmtpSink::start();
    let app = TestApp::spawn(&[
        "--smtp-url",
        &smtp_url(sink.port),
        "--public-url",
        "http://login.test",
        "--mail-retry-base",
        "100ms",
        "--email-verification",
        "required",
    ]);
    let client = app.client();
    // An address is mandatory.
    let r = submit_form(
        &app,
        &client,
        "/sign-up",
        "/sign-up",
        &[
            ("username", "dina"),
            ("password", PASSWORD),
            ("password_repeat", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    // With one: no session, sent to sign in with a notice to check the inbox.
    let r = submit_form(
        &app,
        &client,
        "/sign-up",
        "/sign-up",
        &[
            ("username", "dina"),
            ("email", "wrong@example.org"),
            ("password", PASSWORD),
            ("password_repeat", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    assert!(session_cookie(&r).is_none());
    assert!(
        page_text(&app, &client, "/sign-in")
            .await
            .contains("Check your inbox")
    );
    sink.wait_for(1, Duration::from_secs(15)).await;

    // The right password is refused with a 403 and a form to correct the address; no session.
    let r = sign_in(&app, &client, "dina", PASSWORD).await;
    assert_eq!(r.status(), 403);
    assert!(session_cookie(&r).is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("action=\"/sign-in/verify-email\""), "{page}");
    let ticket = hidden_value(&page, "ticket").unwrap();
    let token = hidden_value(&page, "csrf_token").unwrap();
    // The API says the same.
    let r = app
        .client()
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"username": "dina", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A corrected address gets its own link; confirming it lets dina in.
    let r = post_form(
        &app,
        &client,
        "/sign-in/verify-email",
        &token,
        &[("email", "dina@example.org"), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(r.status(), 403);
    let mails = sink.wait_for(2, Duration::from_secs(15)).await;
    let to_new = mails
        .iter()
        .find(|m| m.to == "dina@example.org")
        .expect("a link to the corrected address");
    let path = link_path(to_new);
    assert_eq!(
        submit_form(&app, &app.client(), &path, &path, &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        sign_in(&app, &app.client(), "dina", PASSWORD)
            .await
            .status(),
        303
    );
    // A forged ticket does nothing.
    let r = post_form(
        &app,
        &client,
        "/sign-in/verify-email",
        &token,
        &[
            ("email", "evil@example.org"),
            ("ticket", "1.99999999999999.AAAA"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
}
