//! Outgoing mail against a real SMTP server (aiosmtpd, `tests/common/smtp.rs`): `gatehouse
//! mail test`, and the outbox's promises (docs/behaviour.md §11.1): mail queued while the SMTP
//! server is down arrives once it is up, a SIGKILL loses none and repeats none, a 5xx ends the
//! retries with an audit event, and the stored body never shows its text.

use std::time::{Duration, Instant};

use crate::common::{
    AdminRun, SmtpSink, TestApp, admin_at, free_port, metric_value, scrape_metrics, smtp_url,
};

const PUBLIC_URL: &str = "http://127.0.0.1:9";
const FROM: &str = "Test Site <site@example.org>";

/// The mail settings for a server or command using the SMTP server on `port`; retries start
/// at 100 ms so a test sees several within a second.
fn mail_flags(port: u16) -> Vec<String> {
    [
        "--smtp-url",
        &smtp_url(port),
        "--public-url",
        PUBLIC_URL,
        "--mail-from",
        FROM,
        "--mail-retry-base",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn spawn_with_mail(port: u16, extra: &[&str]) -> TestApp {
    let flags = mail_flags(port);
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    TestApp::spawn(&args)
}

/// `gatehouse mail test ADDRESS [extra]` against `database`.
fn mail_test(database: &std::path::Path, port: u16, address: &str, extra: &[&str]) -> AdminRun {
    let flags = mail_flags(port);
    let mut args: Vec<&str> = vec!["mail", "test", address];
    args.extend(flags.iter().map(String::as_str));
    args.extend_from_slice(extra);
    admin_at(database, &args, "")
}

/// The outbox rows: (message_id, attempts, body).
fn outbox(app: &TestApp) -> Vec<(String, i64, Vec<u8>)> {
    let db = app.db();
    let mut stmt = db
        .prepare("SELECT message_id, attempts, body FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits (up to 15 s) until `cond` holds on the outbox rows; panics with the log otherwise.
async fn outbox_until(
    app: &TestApp,
    what: &str,
    cond: impl Fn(&[(String, i64, Vec<u8>)]) -> bool,
) -> Vec<(String, i64, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = outbox(app);
        if cond(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "{what}; log:\n{}", app.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Queues a test mail through the hidden `mail test --queue`, returning its Message-ID.
fn queue(app: &TestApp, port: u16, address: &str) -> String {
    let run = mail_test(&app.database(), port, address, &["--queue"]);
    assert_eq!(run.code, 0, "{run:?}");
    let rows = outbox(app);
    assert_eq!(rows.len(), 1, "one queued row");
    rows[0].0.clone()
}

#[tokio::test]
async fn mail_test_delivers_text_and_html_from_the_configured_sender() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let run = mail_test(&dir.path().join("db"), sink.port, "bob@example.org", &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("250"), "the server's answer: {run:?}");
    let mail = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &mail[0];
    assert_eq!(m.from, FROM);
    assert_eq!(m.to, "bob@example.org");
    assert!(m.message_id.starts_with('<') && m.message_id.ends_with("@example.org>"));
    assert!(run.stdout.contains(&m.message_id), "{run:?}");
    let text = m.text.as_deref().expect("a text/plain part");
    let html = m.html.as_deref().expect("a text/html part");
    assert!(
        text.contains("test message") && text.contains(PUBLIC_URL),
        "{text}"
    );
    assert!(html.contains("test message"), "{html}");
    assert!(
        !html.contains("<img") && !html.contains("src="),
        "no remote content"
    );
    assert!(
        !dir.path().join("db").exists(),
        "mail test creates no database"
    );
}

#[tokio::test]
async fn mail_test_to_a_closed_port_exits_1_with_the_reason() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let run = mail_test(&dir.path().join("db"), port, "bob@example.org", &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&smtp_url(port)) && run.stderr.contains("Connection refused"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[tokio::test]
async fn mail_test_without_smtp_or_public_url_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let run = admin_at(&db, &["mail", "test", "bob@example.org"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--smtp-url"), "{run:?}");
    let run = admin_at(
        &db,
        &[
            "mail",
            "test",
            "bob@example.org",
            "--smtp-url",
            "smtp://127.0.0.1:1",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--public-url"), "{run:?}");
}

#[tokio::test]
async fn a_server_with_smtp_but_no_public_url_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--smtp-url",
            "smtp://127.0.0.1:1",
        ])
        .arg("--database")
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--smtp-url needs --public-url"), "{err}");
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_arrives_once_it_is_up() {
    let port = free_port();
    let app = spawn_with_mail(port, &["--metrics-bind", "127.0.0.1:0"]);
    let message_id = queue(&app, port, "carol@example.org");
    // The body is sealed: neither its words nor its link's site show in the stored bytes.
    let rows = outbox_until(&app, "the sender tried and failed", |r| {
        r.first().is_some_and(|row| row.1 >= 2)
    })
    .await;
    let body = String::from_utf8_lossy(&rows[0].2);
    assert!(!body.contains("test message") && !body.contains(PUBLIC_URL));
    assert_eq!(rows[0].0, message_id, "the Message-ID stays across retries");
    let metrics = scrape_metrics(&app).await;
    assert_eq!(
        metric_value(&metrics, "gatehouse_outbox_depth", &[]),
        Some(1.0)
    );

    let sink = SmtpSink::start_on(port);
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "log:\n{}", app.log());
    assert_eq!(mail[0].message_id, message_id);
    assert_eq!(mail[0].to, "carol@example.org");
    outbox_until(&app, "the delivered row is deleted", |r| r.is_empty()).await;
    assert_eq!(sink.messages().len(), 1, "delivered once");
    let metrics = scrape_metrics(&app).await;
    assert_eq!(
        metric_value(&metrics, "gatehouse_outbox_depth", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&metrics, "gatehouse_mails_sent_total", &[]),
        Some(1.0)
    );
    let log = app.log();
    assert!(log.contains("mail delivery deferred"), "{log}");
    assert!(!log.contains("test message"), "no body in the log: {log}");
}

#[tokio::test]
async fn sigkill_with_mail_queued_and_smtp_down_loses_nothing_and_repeats_nothing() {
    let port = free_port();
    let mut app = spawn_with_mail(port, &[]);
    let message_id = queue(&app, port, "dave@example.org");
    outbox_until(&app, "the sender tried and failed", |r| {
        r.first().is_some_and(|row| row.1 >= 1)
    })
    .await;
    app.restart(); // SIGKILL, then the same flags on the same database
    let sink = SmtpSink::start_on(port);
    let mail = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail.len(), 1, "log:\n{}", app.log());
    assert_eq!(mail[0].message_id, message_id);
    outbox_until(&app, "the delivered row is deleted", |r| r.is_empty()).await;
    assert_eq!(sink.messages().len(), 1, "delivered once");
}

#[tokio::test]
async fn a_permanent_refusal_ends_the_retries_and_is_audited() {
    let port = free_port();
    let sink = SmtpSink::refusing_on(port);
    let app = spawn_with_mail(port, &[]);
    let message_id = queue(&app, port, "erin@example.org");
    outbox_until(&app, "the refused row is deleted", |r| r.is_empty()).await;
    assert_eq!(sink.refusals(), 1, "one attempt, no retries");
    let rows = app
        .audit_rows(|rows| rows.iter().any(|r| r.event == "mail"))
        .await;
    let refused = rows
        .iter()
        .find(|r| r.event == "mail")
        .unwrap_or_else(|| panic!("no mail audit event: {rows:?}"));
    assert_eq!(refused.outcome, "refused");
    let detail = refused.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("550") && detail.contains(&message_id),
        "{detail}"
    );
}
