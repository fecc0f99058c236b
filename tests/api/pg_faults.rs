//! Faults on PostgreSQL (docs/behaviour.md §12): the database stopped and restarted under load
//! (503 meanwhile, never a 500 or a crash, and service returns by itself), and an instance
//! killed mid-writes (nothing it answered is lost).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const NO_ADDRESS_LIMITS: &[&str] = &["--ip-failures", "0", "--ip-kdf-rate", "0"];

fn alive(app: &TestApp) -> bool {
    let pid = app.pid().expect("running") as libc::pid_t;
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

async fn api_sign_in(app: &TestApp, user: &str, password: &str) -> u16 {
    app.client()
        .post(app.url("/api/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn page(app: &TestApp, cookie: &str) -> u16 {
    let (c, header) = with_cookie(cookie);
    c.get(app.url("/welcome"))
        .header("cookie", header)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn postgresql_stopped_and_restarted_under_load_gives_503s_then_service() {
    let cluster = PgCluster::start();
    let mut flags = vec!["--db-timeout", "1s", "--db-connect-timeout", "1s"];
    flags.extend_from_slice(NO_ADDRESS_LIMITS);
    let app = TestApp::spawn_pg(&cluster.fresh_database(), &random_key_hex(), &flags);
    let c = app.client();
    sign_up(&app, &c, "steady", "steady-password").await;
    let cookie = session_cookie(&sign_in(&app, &app.client(), "steady", "steady-password").await)
        .expect("a session");
    assert_eq!(page(&app, &cookie).await, 200);

    let load = |stop_at: Instant| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let mut seen = Vec::new();
            while Instant::now() < stop_at {
                seen.push(page(app, &cookie).await);
                seen.push(api_sign_in(app, "steady", "steady-password").await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.run();
    };
    let until = Instant::now() + Duration::from_secs(5);
    let (during, ()) = tokio::join!(load(until), outage);
    assert!(
        !during.contains(&500),
        "a 500 during the outage: {during:?}\n{}",
        app.log()
    );
    assert!(
        during.contains(&503),
        "no 503 while the database was down: {during:?}"
    );
    assert!(alive(&app), "the server survived the outage");

    // Service returns by itself: the same session and a new sign-in.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (p, s) = (
            page(&app, &cookie).await,
            api_sign_in(&app, "steady", "steady-password").await,
        );
        assert_ne!(p, 500);
        assert_ne!(s, 500);
        if p == 200 && s == 204 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: page {p}, sign-in {s}\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_instance_killed_mid_writes_loses_nothing_it_answered() {
    let a = TestApp::spawn_on(Backend::Postgres, NO_ADDRESS_LIMITS);
    let mut b = a.spawn_beside(NO_ADDRESS_LIMITS);
    let pid = b.pid().unwrap() as libc::pid_t;
    let writers = (0..4).map(|w| {
        let b = &b;
        async move {
            let mut answered = Vec::new();
            for i in 0..200 {
                let name = format!("w{w}_{i}");
                let c = b.client();
                let Ok(token) = tokio::time::timeout(Duration::from_secs(5), try_csrf(b, &c)).await
                else {
                    break;
                };
                let Some(token) = token else { break };
                let r = c
                    .post(b.url("/sign-up"))
                    .form(&[
                        ("username", name.as_str()),
                        ("password", "durable-password"),
                        ("password_repeat", "durable-password"),
                        ("csrf_token", token.as_str()),
                    ])
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 303 => answered.push(name),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            answered
        }
    });
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // SAFETY: kill(2) on the child we started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    };
    let (answered, ()) = tokio::join!(futures_util::future::join_all(writers), killer);
    b.stop();
    let answered: Vec<String> = answered.into_iter().flatten().collect();
    assert!(
        answered.len() >= 4,
        "some sign-ups were answered before the kill: {answered:?}"
    );
    for name in &answered {
        assert_eq!(
            api_sign_in(&a, name, "durable-password").await,
            204,
            "{name} was answered 303 by the killed instance but is gone"
        );
    }
}

async fn try_csrf(app: &TestApp, c: &reqwest::Client) -> Option<String> {
    let page = c
        .get(app.url("/sign-up"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    hidden_value(&page, "csrf_token")
}
