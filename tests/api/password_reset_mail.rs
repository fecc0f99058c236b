//! Asking for a reset link by mail (docs/behaviour.md §11.2), against a real SMTP server
//! (aiosmtpd, `tests/common/smtp.rs`): a verified address gets one mail whose link sets a new
//! password; unknown, unverified and mail-less logins get the same page and no mail; the
//! per-account hourly budget, the per-address throttle, the JSON route, and a site without
//! mail. No link ever shows in the log or in the stored outbox bytes.

use std::time::{Duration, Instant};

use crate::both_backends;
use crate::common::*;

both_backends!(
    a_verified_username_gets_one_mail_whose_link_sets_the_password,
    unknown_unverified_and_mail_less_logins_get_the_same_page_and_no_mail,
    the_fourth_request_within_the_hour_sends_no_mail_and_the_third_link_still_works,
    the_address_throttle_answers_429_after_ip_failures_requests,
    the_json_route_answers_202_for_known_and_unknown_alike,
);

const PUBLIC_URL: &str = "http://login.test";
const OLD: &str = "correct horse battery";
const NEW: &str = "a brand new passphrase";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// A server on backend `b` mailing through the SMTP server on `port`, retrying every 100 ms.
fn spawn_mailing(b: Backend, port: u16, extra: &[&str]) -> TestApp {
    let url = smtp_url(port);
    let mut args = vec![
        "--smtp-url",
        &url,
        "--public-url",
        PUBLIC_URL,
        "--mail-retry-base",
        "100ms",
        // Addresses are marked verified directly (below): no confirmation mails in the sink.
        "--email-verification",
        "off",
    ];
    args.extend_from_slice(extra);
    TestApp::spawn_on(b, &args)
}

/// Signs `name` up with `email` (if any) through the no-JS form, then marks the address
/// verified when asked (directly in the database: the verification flow is tested on its own).
async fn account(app: &TestApp, name: &str, email: Option<&str>, verified: bool) {
    let r = submit_form(
        app,
        &app.client(),
        "/sign-up",
        "/sign-up",
        &[
            ("username", name),
            ("email", email.unwrap_or("")),
            ("password", OLD),
            ("password_repeat", OLD),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        303,
        "sign-up of {name}: {}",
        r.text().await.unwrap()
    );
    if verified {
        let n = app.execute_sql(&format!(
            "UPDATE users SET email_verified_at = 1 WHERE username = '{name}'"
        ));
        assert_eq!(n, 1);
    }
}

/// A client that names itself Firefox on Linux.
fn firefox() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(FIREFOX)
        .build()
        .unwrap()
}

/// POSTs the request form for `login` with `client`; returns (status, body without the CSRF
/// token's value).
async fn ask(app: &TestApp, client: &reqwest::Client, login: &str) -> (u16, String) {
    let token = csrf_token(app, client, "/password-reset").await;
    let r = post_form(app, client, "/password-reset", &token, &[("login", login)]).await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap().replace(&token, "CSRF");
    (status, body)
}

/// Waits until the server has handled `n` reset requests (their audit events), returning the
/// outcomes by row.
async fn handled(app: &TestApp, n: i64) -> Vec<(String, Option<String>, i64)> {
    let requests = |rows: &[AuditRow]| {
        rows.iter()
            .filter(|r| r.event == "password_reset_request")
            .map(|r| r.count)
            .sum::<i64>()
    };
    let rows = app.audit_rows(|rows| requests(rows) >= n).await;
    assert_eq!(requests(&rows), n, "handled requests; log:\n{}", app.log());
    rows.into_iter()
        .filter(|r| r.event == "password_reset_request")
        .map(|r| (r.outcome, r.username, r.count))
        .collect()
}

/// How many times `outcome` was audited for reset requests.
fn outcomes(rows: &[(String, Option<String>, i64)], outcome: &str) -> i64 {
    rows.iter().filter(|r| r.0 == outcome).map(|r| r.2).sum()
}

/// Waits (up to 15 s) until the outbox is empty: every queued mail delivered.
async fn outbox_drained(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = app.query_i64("SELECT count(*) FROM outbox");
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "outbox not drained; log:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `/password-reset/TOKEN` path of the link in a reset mail.
fn link_path(mail: &Mail) -> String {
    let text = mail.text.as_deref().expect("a text part");
    let start = text
        .find(&format!("{PUBLIC_URL}/password-reset/"))
        .unwrap_or_else(|| panic!("no link in:\n{text}"))
        + PUBLIC_URL.len();
    let token_at = start + "/password-reset/".len();
    let len = text[token_at..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(text.len() - token_at);
    assert_eq!(len, 43, "32 random bytes, base64url: {text}");
    text[start..token_at + len].to_owned()
}

/// Follows a mailed link with the no-JS form: GET shows the user, POST sets `password`.
async fn follow(app: &TestApp, path: &str, username: &str, password: &str) {
    let browser = app.client();
    let page = page_text(app, &browser, path).await;
    assert!(page.contains(&format!("value=\"{username}\"")), "{page}");
    let r = submit_form(
        app,
        &browser,
        path,
        path,
        &[
            ("new_password", password),
            ("new_password_repeat", password),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    assert!(session_cookie(&r).is_none(), "a reset never signs in");
}

/// Every byte of the database files (main and WAL), as text.
fn database_bytes(app: &TestApp) -> String {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut path = app.database().into_os_string();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(path) {
            all.extend(bytes);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

async fn a_verified_username_gets_one_mail_whose_link_sets_the_password(b: Backend) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port, &[]);
    account(&app, "rosa", Some("rosa@example.org"), true).await;

    // The sign-in page leads here; the form asks for a username or an email.
    let sign_in_page = page_text(&app, &app.client(), "/sign-in").await;
    assert!(
        sign_in_page.contains("href=\"/password-reset\""),
        "{sign_in_page}"
    );
    assert!(sign_in_page.contains("Forgot your password?"));
    let form = page_text(&app, &app.client(), "/password-reset").await;
    assert!(
        form.contains("name=\"login\"") && form.contains("1 hour"),
        "{form}"
    );

    // The username in another case matches.
    let (status, body) = ask(&app, &firefox(), "ROSA").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("a link to choose a new password is on its way"),
        "{body}"
    );
    let rows = handled(&app, 1).await;
    assert_eq!(outcomes(&rows, "mailed"), 1, "{rows:?}");
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "log:\n{}", app.log());
    let m = &mail[0];
    assert_eq!(m.to, "rosa@example.org");
    assert!(m.subject.contains("Reset your password"), "{m:?}");
    let text = m.text.as_deref().unwrap();
    assert!(text.contains("1 hour"), "the expiry: {text}");
    assert!(
        text.contains("Firefox 128 on Linux") && !text.contains("Gecko"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1"), "the requesting address: {text}");

    let path = link_path(m);
    follow(&app, &path, "rosa", NEW).await;
    assert_eq!(
        sign_in(&app, &app.client(), "rosa", OLD).await.status(),
        401
    );
    assert_eq!(
        sign_in(&app, &app.client(), "rosa", NEW).await.status(),
        303
    );

    // The change is announced to the verified address, with no link in it.
    // The mailbox does not keep delivery order: the notice is the mail that is not the link's.
    let mail = sink.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 2, "log:\n{}", app.log());
    let notice = mail
        .iter()
        .find(|n| n.message_id != m.message_id)
        .unwrap_or_else(|| panic!("{mail:?}"));
    assert_eq!(notice.to, "rosa@example.org");
    assert!(notice.subject.contains("was changed"), "{notice:?}");
    assert!(!notice.raw.contains("/password-reset/"));
    // The link is spent; only one reset mail ever went out.
    assert_eq!(
        app.client()
            .get(app.url(&path))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    outbox_drained(&app).await;
    assert_eq!(sink.messages().len(), 2);
    let token = path.trim_start_matches("/password-reset/");
    assert!(!app.log().contains(token), "the log holds the token");
}

#[tokio::test]
async fn an_email_in_another_case_gets_the_link_and_no_link_is_ever_stored_or_logged() {
    // The SMTP server is down at first: the mail waits in the outbox, where its bytes are read.
    let port = free_port();
    let app = spawn_mailing(Backend::Sqlite, port, &[]);
    account(&app, "sami", Some("sami@example.org"), true).await;
    let (status, _) = ask(&app, &app.client(), "Sami@EXAMPLE.org").await;
    assert_eq!(status, 200);
    let rows = handled(&app, 1).await;
    assert_eq!(outcomes(&rows, "mailed"), 1, "{rows:?}");
    let stored: Vec<u8> = app
        .db()
        .query_row("SELECT body FROM outbox", [], |r| r.get(0))
        .unwrap();
    let at_rest = database_bytes(&app);

    let sink = SmtpSink::start_on(port);
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "log:\n{}", app.log());
    assert_eq!(mail[0].to, "sami@example.org");
    let path = link_path(&mail[0]);
    let token = path.trim_start_matches("/password-reset/").to_owned();
    assert!(!String::from_utf8_lossy(&stored).contains(&token[..20]));
    assert!(
        !at_rest.contains(&token[..20]),
        "the database files hold the token"
    );

    follow(&app, &path, "sami", NEW).await;
    assert_eq!(
        sign_in(&app, &app.client(), "sami", NEW).await.status(),
        303
    );
    outbox_drained(&app).await;
    assert!(!database_bytes(&app).contains(&token[..20]));
    let log = app.log();
    assert!(
        !log.contains(&token[..20]),
        "the log holds the token:\n{log}"
    );
}

async fn unknown_unverified_and_mail_less_logins_get_the_same_page_and_no_mail(b: Backend) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port, &[]);
    account(&app, "vera", Some("vera@example.org"), true).await;
    account(&app, "ursula", Some("ursula@example.org"), false).await;
    account(&app, "nomail", None, false).await;

    let client = app.client();
    let (status, known) = ask(&app, &client, "vera").await;
    assert_eq!(status, 200);
    for login in [
        "nobody",
        "nobody@example.org",
        "ursula",
        "URSULA@example.org",
        "nomail",
    ] {
        let (status, body) = ask(&app, &client, login).await;
        assert_eq!(status, 200, "{login}");
        assert_eq!(
            body, known,
            "the page for {login} differs from a known login's"
        );
    }
    // A fresh browser (another CSRF token) gets the same page too.
    let (_, fresh) = ask(&app, &app.client(), "nobody").await;
    assert_eq!(fresh, known);

    let rows = handled(&app, 7).await;
    assert_eq!(outcomes(&rows, "mailed"), 1, "{rows:?}");
    assert_eq!(outcomes(&rows, "unknown"), 3, "{rows:?}");
    assert_eq!(outcomes(&rows, "unverified"), 2, "{rows:?}");
    assert_eq!(outcomes(&rows, "no_email"), 1, "{rows:?}");
    outbox_drained(&app).await;
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].to, "vera@example.org");
    // No token was made for the accounts that got no mail.
    let tokens = app.query_i64(
        "SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id
          WHERE u.username != 'vera'",
    );
    assert_eq!(tokens, 0);
}

async fn the_fourth_request_within_the_hour_sends_no_mail_and_the_third_link_still_works(
    b: Backend,
) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port, &[]);
    account(&app, "tomas", Some("tomas@example.org"), true).await;
    let client = app.client();
    let mut pages = Vec::new();
    let mut links: Vec<String> = Vec::new();
    for n in 1..=4 {
        let (status, body) = ask(&app, &client, "tomas").await;
        assert_eq!(status, 200);
        pages.push(body);
        // Each request handled, and its mail delivered, before the next. The mailbox does not
        // keep delivery order: a request's link is the one not seen before.
        handled(&app, n).await;
        if n <= 3 {
            let mail = sink.wait_for(n as usize, Duration::from_secs(15)).await;
            let new: Vec<String> = mail
                .iter()
                .map(link_path)
                .filter(|l| !links.contains(l))
                .collect();
            assert_eq!(new.len(), 1, "request {n}: {mail:?}");
            links.extend(new);
        }
    }
    assert!(
        pages.iter().all(|p| *p == pages[0]),
        "the over-budget page differs"
    );
    let rows = handled(&app, 4).await;
    assert_eq!(outcomes(&rows, "mailed"), 3, "{rows:?}");
    assert_eq!(outcomes(&rows, "over_budget"), 1, "{rows:?}");
    outbox_drained(&app).await;
    let mail = sink.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 3, "no fourth mail: {mail:?}");

    for old in &links[..2] {
        let r = app.client().get(app.url(old)).send().await.unwrap();
        assert_eq!(r.status(), 410, "a newer link supersedes {old}");
    }
    follow(&app, &links[2], "tomas", NEW).await;
    assert_eq!(
        sign_in(&app, &app.client(), "tomas", NEW).await.status(),
        303
    );
}

async fn the_address_throttle_answers_429_after_ip_failures_requests(b: Backend) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port, &["--ip-failures", "3"]);
    let client = app.client();
    for _ in 0..3 {
        assert_eq!(ask(&app, &client, "nobody").await.0, 200);
    }
    let (status, body) = ask(&app, &client, "nobody").await;
    assert_eq!(status, 429, "{body}");
    let r = client
        .post(app.url("/api/password-reset"))
        .json(&serde_json::json!({ "login": "somebody" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The throttle is about the address: sign-in from it is refused as well.
    assert_eq!(sign_in(&app, &client, "nobody", OLD).await.status(), 429);
    let rows = app
        .audit_rows(|rows| {
            rows.iter()
                .any(|r| r.event == "password_reset_request" && r.outcome == "throttled")
        })
        .await;
    assert!(
        rows.iter()
            .any(|r| r.event == "password_reset_request" && r.outcome == "throttled"),
        "{rows:?}"
    );
}

async fn the_json_route_answers_202_for_known_and_unknown_alike(b: Backend) {
    let sink = SmtpSink::start();
    let app = spawn_mailing(b, sink.port, &[]);
    account(&app, "wanda", Some("wanda@example.org"), true).await;
    let client = app.client();
    let post = |login: &'static str| {
        client
            .post(app.url("/api/password-reset"))
            .json(&serde_json::json!({ "login": login }))
            .send()
    };
    let known = post("wanda@example.org").await.unwrap();
    assert_eq!(known.status(), 202);
    let known = known.text().await.unwrap();
    let unknown = post("nobody@example.org").await.unwrap();
    assert_eq!(unknown.status(), 202);
    assert_eq!(unknown.text().await.unwrap(), known);
    let rows = handled(&app, 2).await;
    assert_eq!(outcomes(&rows, "mailed"), 1, "{rows:?}");
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, "wanda@example.org");

    // Like the rest of the API: a form body is 415, a missing login 400.
    let r = client
        .post(app.url("/api/password-reset"))
        .form(&[("login", "wanda")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = client
        .post(app.url("/api/password-reset"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(app.url("/api/password-reset"))
        .json(&serde_json::json!({ "login": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn without_smtp_the_form_says_mail_is_off() {
    let app = TestApp::spawn(&[]);
    let client = app.client();
    let page = page_text(&app, &client, "/password-reset").await;
    assert!(
        page.contains("does not send email") && page.contains("operator"),
        "{page}"
    );
    assert!(!page.contains("name=\"login\""), "no form to fill in vain");
    let token = csrf_token(&app, &client, "/sign-in").await;
    let r = post_form(&app, &client, "/password-reset", &token, &[("login", "x")]).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("does not send email"), "{body}");
    let r = client
        .post(app.url("/api/password-reset"))
        .json(&serde_json::json!({ "login": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "always 202, even without mail");
    assert!(r.text().await.unwrap().contains("does not send email"));
}
