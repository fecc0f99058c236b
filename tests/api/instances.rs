//! Several Gatehouse processes on one PostgreSQL database (docs/behaviour.md §12): sessions,
//! the fail-lock, the address throttle and admin changes are shared, changes are honoured by
//! the other instances within 100 ms, instances starting together migrate once, a server
//! with another secret key refuses to start, queued mail is sent once, and a password in
//! `--database` is never logged.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use gatehouse::store::postgres::cache::LISTENER_NAME;

use crate::common::*;

/// What §12 allows another instance before it honours a change.
const PROPAGATION: Duration = Duration::from_millis(100);

/// Two instances on a fresh database, with the same key and `flags`.
fn pair(flags: &[&str]) -> (TestApp, TestApp) {
    let a = TestApp::spawn_on(Backend::Postgres, flags);
    let b = a.spawn_beside(flags);
    (a, b)
}

async fn welcome_status(app: &TestApp, client: &reqwest::Client) -> u16 {
    client
        .get(app.url("/welcome"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `/welcome` on `app` with `cookie` until it is refused; how long that took from
/// `since`, or `None` if it was still accepted after a second.
async fn refused_after(app: &TestApp, cookie: &str, since: Instant) -> Option<Duration> {
    while since.elapsed() < Duration::from_secs(1) {
        if !cookie_works(app, cookie).await {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

/// Signs `user` in on `app`; the session cookie.
async fn session_on(app: &TestApp, user: &str, password: &str) -> String {
    let r = sign_in(app, &app.client(), user, password).await;
    assert_eq!(r.status(), 303, "sign-in of {user}");
    session_cookie(&r).expect("a session cookie")
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_the_other() {
    let (a, b) = pair(&[]);
    sign_up(&a, &a.client(), "shared", "shared-password").await;
    let cookie = session_on(&b, "shared", "shared-password").await;
    assert!(cookie_works(&a, &cookie).await);
    assert!(cookie_works(&b, &cookie).await);
    // The account page on A lists the session made on B.
    let (c, header) = with_cookie(&cookie);
    let page = c
        .get(a.url("/account"))
        .header("cookie", header)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("shared"), "{page}");
}

#[tokio::test]
async fn sign_out_and_revoke_on_one_instance_end_the_session_on_the_other_within_100_ms() {
    let (a, b) = pair(&[]);
    let owner = a.client();
    sign_up(&a, &owner, "leaver", "leaver-password").await;
    let second = session_on(&a, "leaver", "leaver-password").await;
    // B has both sessions in its cache (looked up twice).
    let first = owner_cookie(&a, &owner).await;
    for cookie in [&first, &second] {
        assert!(cookie_works(&b, cookie).await);
        assert!(cookie_works(&b, cookie).await);
    }
    let r = submit_form(&a, &owner, "/sign-out", "/sign-out", &[]).await;
    assert_eq!(r.status(), 303);
    let signed_out = Instant::now();
    assert!(!cookie_works(&a, &first).await, "at once on A");
    let took = refused_after(&b, &first, signed_out).await;
    assert!(
        took.is_some_and(|t| t <= PROPAGATION),
        "B honoured the sign-out after {took:?}"
    );

    // An admin's revoke, run against the database, reaches both.
    let list = a.admin_ok(&["session", "list", "--user", "leaver"], "");
    let id = list
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie_works(&a, &second).await && cookie_works(&b, &second).await);
    a.admin_ok(&["session", "revoke", &id], "");
    let revoked = Instant::now();
    for app in [&a, &b] {
        let took = refused_after(app, &second, revoked).await;
        assert!(
            took.is_some_and(|t| t <= PROPAGATION),
            "revoke honoured after {took:?}"
        );
    }
}

/// The session cookie a client's jar holds, read back through a page that shows nothing of it:
/// sign in again from the same client instead, which is what the jar holds.
async fn owner_cookie(app: &TestApp, client: &reqwest::Client) -> String {
    let r = sign_in(app, client, "leaver", "leaver-password").await;
    session_cookie(&r).expect("a session cookie")
}

/// §12: an instance whose notification channel goes down stops trusting its cache at once,
/// so a sign-out it cannot hear about is still honoured within 100 ms; once the channel is
/// back, notifications reach it again.
#[tokio::test]
async fn a_lost_notification_channel_never_leaves_a_session_trusted() {
    let (a, b) = pair(&[]);
    let owner = a.client();
    sign_up(&a, &owner, "leaver", "leaver-password").await;
    let db = a.database().to_str().unwrap().to_owned();
    // `what` over every instance's listener (the pool's connections are left alone).
    let listeners = |what: &str| {
        pg_query_text(
            &db,
            &format!(
                "SELECT {what} FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = '{LISTENER_NAME}'"
            ),
        )
    };
    for round in ["while the channel is down", "once it is back"] {
        let cookie = owner_cookie(&a, &owner).await;
        // B has the session in its cache (looked up twice).
        assert!(cookie_works(&b, &cookie).await && cookie_works(&b, &cookie).await);
        if round == "while the channel is down" {
            let cut = listeners("count(pg_terminate_backend(pid))");
            assert_eq!(cut.as_deref(), Some("2"), "one listener per instance");
            // Long enough for B to see its connection closed, far shorter than its heartbeat's
            // one second of trust.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = submit_form(&a, &owner, "/sign-out", "/sign-out", &[]).await;
        assert_eq!(r.status(), 303);
        let signed_out = Instant::now();
        let took = refused_after(&b, &cookie, signed_out).await;
        assert!(
            took.is_some_and(|t| t <= PROPAGATION),
            "{round}: B honoured the sign-out after {took:?}"
        );
        // The listeners reconnect after 200 ms; give them time to listen again.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let back = listeners("count(*)");
    assert_eq!(back.as_deref(), Some("2"), "both listeners came back");
}

#[tokio::test]
async fn a_password_change_on_one_instance_ends_the_old_sessions_on_the_other() {
    let (a, b) = pair(&[]);
    let owner = a.client();
    sign_up(&a, &owner, "mover", "mover-password").await;
    let elsewhere = session_on(&b, "mover", "mover-password").await;
    assert!(cookie_works(&b, &elsewhere).await);
    assert_eq!(
        change_password(&a, &owner, "mover-password", "moved-password")
            .await
            .status(),
        303
    );
    let changed = Instant::now();
    let took = refused_after(&b, &elsewhere, changed).await;
    assert!(took.is_some_and(|t| t <= PROPAGATION), "after {took:?}");
    assert_eq!(
        welcome_status(&a, &owner).await,
        200,
        "the changer stays in"
    );
    assert_eq!(
        sign_in(&b, &b.client(), "mover", "mover-password")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&b, &b.client(), "mover", "moved-password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn failures_on_both_instances_build_one_lock() {
    let (a, b) = pair(&["--ip-failures", "0"]);
    sign_up(&a, &a.client(), "target", "target-password").await;
    assert_eq!(
        sign_in(&a, &a.client(), "target", "wrong-one")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&b, &b.client(), "target", "wrong-two")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&b, &b.client(), "target", "wrong-three")
            .await
            .status(),
        401
    );
    for app in [&a, &b] {
        let r = sign_in(app, &app.client(), "target", "target-password").await;
        assert_eq!(r.status(), 429, "locked on both");
    }
    // An admin's unlock is seen by both.
    a.admin_ok(&["user", "unlock", "target"], "");
    assert_eq!(
        sign_in(&b, &b.client(), "target", "target-password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn parallel_guesses_across_instances_all_count() {
    let (a, b) = pair(&["--ip-failures", "0"]);
    let guess = || {
        vec![
            ("username", "ghost".to_owned()),
            ("password", "guess-guess".to_owned()),
        ]
    };
    let statuses = post_in_parallel_across(&[&a, &b], "/sign-in", (0..12).map(|_| guess())).await;
    assert_eq!(count_of(&statuses, 401), 3, "{statuses:?}");
    assert_eq!(count_of(&statuses, 429), 9, "{statuses:?}");
}

#[tokio::test]
async fn parallel_sign_ups_of_one_name_across_instances_make_one_user() {
    let (a, b) = pair(&["--ip-failures", "0", "--ip-kdf-rate", "0"]);
    let forms = (0..12).map(|i| {
        let pw = format!("parallel-password-{i}");
        vec![
            ("username", "contested".to_owned()),
            ("password", pw.clone()),
            ("password_repeat", pw),
        ]
    });
    let statuses = post_in_parallel_across(&[&a, &b], "/sign-up", forms).await;
    assert_eq!(count_of(&statuses, 303), 1, "{statuses:?}");
    assert_eq!(count_of(&statuses, 409), 11, "{statuses:?}");
    let list = b.admin_ok(&["user", "list"], "");
    assert_eq!(list.stdout.matches("contested").count(), 1, "{list:?}");
}

#[tokio::test]
async fn the_address_throttle_is_shared() {
    let (a, b) = pair(&["--ip-failures", "4", "--ip-window", "10m"]);
    sign_up(&a, &a.client(), "owner", "owner-password").await;
    for (app, user) in [
        (&a, "x_one"),
        (&b, "x_two"),
        (&a, "x_three"),
        (&b, "x_four"),
    ] {
        assert_eq!(
            sign_in(app, &app.client(), user, "guess-guess")
                .await
                .status(),
            401
        );
    }
    for app in [&a, &b] {
        let r = sign_in(app, &app.client(), "owner", "owner-password").await;
        assert_eq!(
            r.status(),
            429,
            "the address is throttled on both instances"
        );
    }
}

#[tokio::test]
async fn admin_commands_are_seen_by_every_instance() {
    let (a, b) = pair(&[]);
    let c = a.client();
    sign_up(&a, &c, "grace", "grace-password").await;
    let cookie = session_on(&b, "grace", "grace-password").await;
    // Both instances cache the session.
    assert!(cookie_works(&a, &cookie).await && cookie_works(&b, &cookie).await);

    // A group added by an admin shows in forward-auth on both at once.
    let ask = |app: &TestApp| {
        let (client, header) = with_cookie(&cookie);
        let url = app.url("/auth/request?group=ops");
        async move {
            client
                .get(url)
                .header("cookie", header)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ask(&a).await, 403);
    assert_eq!(ask(&b).await, 403);
    a.admin_ok(&["user", "group", "add", "grace", "ops"], "");
    let added = Instant::now();
    for app in [&a, &b] {
        loop {
            if ask(app).await == 200 {
                break;
            }
            assert!(
                added.elapsed() <= PROPAGATION,
                "the group did not reach {}",
                app.address
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    // Disabled: refused everywhere; enabled: signs in again.
    b.admin_ok(&["user", "disable", "grace"], "");
    let disabled = Instant::now();
    for app in [&a, &b] {
        let took = refused_after(app, &cookie, disabled).await;
        assert!(took.is_some_and(|t| t <= PROPAGATION), "after {took:?}");
    }
    assert_eq!(
        sign_in(&a, &a.client(), "grace", "grace-password")
            .await
            .status(),
        401
    );
    b.admin_ok(&["user", "enable", "grace"], "");
    assert_eq!(
        sign_in(&a, &a.client(), "grace", "grace-password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn instances_starting_together_on_a_fresh_database_all_start() {
    let url = fresh_pg_database();
    let key = random_key_hex();
    let apps: Vec<TestApp> = std::thread::scope(|s| {
        let started: Vec<_> = (0..3)
            .map(|_| s.spawn(|| TestApp::spawn_pg(&url, &key, &[])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        pg_query_text(&url, "SELECT count(*) FROM schema_version").as_deref(),
        Some("1")
    );
    sign_up(&apps[0], &apps[0].client(), "early", "early-password").await;
    for app in &apps {
        assert_eq!(
            sign_in(app, &app.client(), "early", "early-password")
                .await
                .status(),
            303
        );
    }
}

#[tokio::test]
async fn a_server_with_another_secret_key_refuses_to_start() {
    let a = TestApp::spawn_on(Backend::Postgres, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .env("GATEHOUSE_SECRET_KEY", random_key_hex())
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(a.database())
        .output()
        .expect("run gatehouse");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secret key"), "{stderr}");
    assert!(!stderr.contains(a.key_hex().unwrap()), "never the key");
    // The first instance is unaffected.
    sign_up(&a, &a.client(), "still", "still-password").await;
}

#[tokio::test]
async fn a_server_on_postgresql_without_a_key_refuses_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .args(["--bind", "127.0.0.1:0", "--database", &fresh_pg_database()])
        .output()
        .expect("run gatehouse");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GATEHOUSE_SECRET_KEY"), "{stderr}");
}

/// §12: a password in `--database` works, but the server warns (`ps` shows it) and never
/// logs it. The test cluster trusts local connections, so any password is accepted.
#[tokio::test]
async fn a_password_in_the_database_flag_is_accepted_with_a_warning_and_never_logged() {
    const PASSWORD: &str = "Flag-Pw-5e1f";
    let plain = fresh_pg_database();
    let with_password = plain.replacen("://postgres@", &format!("://postgres:{PASSWORD}@"), 1);
    assert_ne!(
        with_password, plain,
        "the test URL names the postgres user: {plain}"
    );
    let app = TestApp::spawn_pg(&with_password, &random_key_hex(), &[]);
    sign_up(&app, &app.client(), "flagged", "flagged-password").await;
    let log = app.log();
    assert!(log.contains("holds a password"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
}

/// §12: mail waiting in the outbox when three instances start together is sent once, by
/// whichever instance claims it.
#[tokio::test]
async fn instances_starting_together_send_each_queued_mail_once() {
    // Three of the sender's batches of 16, so that starting instances race for them.
    const MAILS: usize = 48;
    let url = fresh_pg_database();
    let key = random_key_hex();
    let sink = SmtpSink::start();
    let env = [("GATEHOUSE_SECRET_KEY", key.as_str())];
    let to: Vec<String> = (0..MAILS).map(|i| format!("m{i}@example.org")).collect();
    std::thread::scope(|s| {
        for chunk in to.chunks(MAILS / 8) {
            let (url, env) = (&url, &env);
            s.spawn(move || {
                for address in chunk {
                    queue_mail(std::path::Path::new(url), sink.port, address, env);
                }
            });
        }
    });
    let flags = mail_flags(sink.port);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let apps: Vec<TestApp> = std::thread::scope(|s| {
        let started: Vec<_> = (0..3)
            .map(|_| s.spawn(|| TestApp::spawn_pg(&url, &key, &flags)))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    sink.wait_for(MAILS, Duration::from_secs(20)).await;
    // A second sending of any of them would come within the retry base of 100 ms.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut delivered: Vec<String> = sink.messages().into_iter().map(|m| m.to).collect();
    delivered.sort();
    let mut want = to.clone();
    want.sort();
    assert_eq!(delivered, want, "each mail once");
    assert_eq!(
        pg_query_text(&url, "SELECT count(*) FROM outbox").as_deref(),
        Some("0"),
        "the outbox is empty"
    );
    let sent: Vec<usize> = apps
        .iter()
        .map(|a| a.log().matches("mail delivered").count())
        .collect();
    assert_eq!(
        sent.iter().sum::<usize>(),
        MAILS,
        "deliveries per instance: {sent:?}"
    );
}

#[tokio::test]
async fn sign_ins_spread_over_two_instances_keep_working() {
    // Each attempt reserves a failure before its password is checked (§4), so ten at once
    // need a lock that allows ten.
    let (a, b) = pair(&[
        "--ip-failures",
        "0",
        "--ip-kdf-rate",
        "0",
        "--lock-attempts",
        "100",
    ]);
    sign_up(&a, &a.client(), "busy", "busy-password").await;
    let results = join_all((0..10).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move {
            sign_in(app, &app.client(), "busy", "busy-password")
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    assert!(results.iter().all(|s| *s == 303), "{results:?}");
}
