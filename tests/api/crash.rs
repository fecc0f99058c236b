//! Crash safety (issue 4 §7): SIGKILL at random moments during concurrent sign-ups and password
//! changes loses nothing that was confirmed and leaves no half-written user; an outside writer
//! holding the database lock causes waits, never a 500.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::common::*;

const NO_LIMITS: &[&str] = &[
    "--ip-failures",
    "0",
    "--ip-kdf-rate",
    "0",
    "--lock-attempts",
    "1000000",
];

/// A pseudo-random number from the clock: enough to vary the kill moment between rounds.
fn jitter(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos) % max_ms
}

/// Signs up names `prefix_0, prefix_1, …` until the server goes away; returns the confirmed ones.
async fn sign_up_until_crash(app: &TestApp, prefix: String, deadline: Instant) -> Vec<String> {
    let mut confirmed = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        let c = app.client();
        let Ok(page) = c.get(app.url("/sign-up")).send().await else {
            break;
        };
        let Ok(html) = page.text().await else { break };
        let token = hidden_value(&html, "csrf_token").unwrap();
        let name = format!("{prefix}_{n}");
        n += 1;
        let pw = format!("{name}-password");
        let sent = c
            .post(app.url("/sign-up"))
            .form(&[
                ("username", name.as_str()),
                ("password", &pw),
                ("password_repeat", &pw),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        match sent {
            Ok(r) => {
                assert!(r.status().as_u16() < 500, "{name}: {}", r.status());
                if r.status() == 303 {
                    confirmed.push(name);
                }
            }
            Err(_) => break,
        }
    }
    confirmed
}

/// Changes `user`'s password again and again; `candidates` holds the passwords that may be
/// current (two while a change's outcome is unknown).
async fn change_until_crash(
    app: &TestApp,
    user: String,
    mut candidates: Vec<String>,
    deadline: Instant,
) -> Vec<String> {
    let mut k = 0;
    while Instant::now() < deadline {
        let c = app.client();
        let mut current = None;
        for pw in &candidates {
            match sign_in_raw(app, &c, &user, pw).await {
                Some(303) => {
                    current = Some(pw.clone());
                    break;
                }
                Some(s) => assert!(s < 500, "{user}: sign-in {s}"),
                None => return candidates,
            }
        }
        let current = current.unwrap_or_else(|| panic!("{user}: none of {candidates:?} signs in"));
        candidates = vec![current.clone()];
        k += 1;
        let new = format!("{user}-password-{k}-{}", jitter(1_000_000));
        let Ok(page) = c.get(app.url("/account")).send().await else {
            return candidates;
        };
        let Ok(html) = page.text().await else {
            return candidates;
        };
        let token = hidden_value(&html, "csrf_token").unwrap();
        let fields = [
            ("current_password", current.as_str()),
            ("new_password", new.as_str()),
            ("new_password_repeat", new.as_str()),
            ("csrf_token", token.as_str()),
        ];
        match c
            .post(app.url("/account/password"))
            .form(&fields)
            .send()
            .await
        {
            Ok(r) if r.status() == 303 => candidates = vec![new],
            Ok(r) => panic!("{user}: change answered {}", r.status()),
            // Lost in the crash: either password may be the one on disk.
            Err(_) => {
                candidates.push(new);
                return candidates;
            }
        }
    }
    candidates
}

/// The sign-in status, or None when the server is unreachable.
async fn sign_in_raw(app: &TestApp, c: &reqwest::Client, user: &str, pw: &str) -> Option<u16> {
    let html = c
        .get(app.url("/sign-in"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let token = hidden_value(&html, "csrf_token")?;
    let r = c
        .post(app.url("/sign-in"))
        .form(&[
            ("username", user),
            ("password", pw),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sigkill_during_writes_loses_nothing_confirmed() {
    let mut app = TestApp::spawn(NO_LIMITS);
    let changers: Vec<String> = (0..6).map(|i| format!("changer{i}")).collect();
    let mut passwords: HashMap<String, Vec<String>> = HashMap::new();
    for u in &changers {
        sign_up(&app, &app.client(), u, "initial-password").await;
        passwords.insert(u.clone(), vec!["initial-password".into()]);
    }
    let mut confirmed = Vec::new();
    for round in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = app.pid().unwrap();
        let killer = async {
            tokio::time::sleep(Duration::from_millis(300 + jitter(700))).await;
            kill9(pid);
        };
        let sign_ups = join_all(
            (0..8).map(|t| sign_up_until_crash(&app, format!("crash{round}_{t}"), deadline)),
        );
        let changes = join_all(
            changers
                .iter()
                .map(|u| change_until_crash(&app, u.clone(), passwords[u].clone(), deadline)),
        );
        let (ups, changed, ()) = tokio::join!(sign_ups, changes, killer);
        confirmed.extend(ups.into_iter().flatten());
        for (u, candidates) in changers.iter().zip(changed) {
            passwords.insert(u.clone(), candidates);
        }
        app.restart();
    }
    assert!(
        confirmed.len() > 20,
        "the workload ran: {} sign-ups",
        confirmed.len()
    );

    let db = app.db();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // No half-written user: every row is complete and well-formed.
    let bad: i64 = db
        .query_row(
            "SELECT count(*) FROM users WHERE password_hash NOT LIKE '$argon2id$v=19$%'
               OR created_at <= 0 OR updated_at < created_at OR password_changed_at < created_at
               OR active NOT IN (0, 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
    // Every confirmed sign-up exists and signs in.
    let c = app.client();
    for name in &confirmed {
        assert_eq!(
            sign_in_raw(&app, &c, name, &format!("{name}-password")).await,
            Some(303),
            "{name}"
        );
    }
    // Every changer signs in with a password the server confirmed (or one in flight at a kill).
    for (u, candidates) in &passwords {
        let mut ok = false;
        for pw in candidates {
            if sign_in_raw(&app, &c, u, pw).await == Some(303) {
                ok = true;
                break;
            }
        }
        assert!(ok, "{u}: none of {candidates:?}");
    }
}

#[tokio::test]
async fn an_outside_writer_holding_the_lock_causes_no_500() {
    let app = TestApp::spawn(NO_LIMITS);
    sign_up(&app, &app.client(), "steady", "steady-password").await;
    let db_path = app.database();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conn = rusqlite::Connection::open(db_path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut held = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && held < 200 {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .unwrap();
                tx.execute(
                    "UPDATE users SET updated_at = updated_at WHERE username = 'steady'",
                    [],
                )
                .unwrap();
                std::thread::sleep(Duration::from_millis(40));
                tx.commit().unwrap();
                held += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            held
        })
    };
    let app = &app;
    let work = join_all((0..8).map(|t| async move {
        let mut statuses = Vec::new();
        for n in 0..6 {
            let c = app.client();
            let name = format!("busy{t}_{n}");
            let token = csrf_token(app, &c, "/sign-up").await;
            let pw = "busy-password";
            let r = post_form(
                app,
                &c,
                "/sign-up",
                &token,
                &[
                    ("username", &name),
                    ("password", pw),
                    ("password_repeat", pw),
                ],
            )
            .await;
            statuses.push(r.status().as_u16());
            statuses.push(
                c.get(app.url("/welcome"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
            statuses.push(
                sign_in(app, &c, "steady", "steady-password")
                    .await
                    .status()
                    .as_u16(),
            );
        }
        statuses
    }))
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let held = writer.join().unwrap();
    assert!(
        held > 5,
        "the outside writer really held the lock ({held} times)"
    );
    let all: Vec<u16> = work.into_iter().flatten().collect();
    assert!(all.iter().all(|s| *s < 500), "{all:?}");
    assert_eq!(
        all.iter().filter(|s| **s == 303).count(),
        8 * 6 * 2,
        "every sign-up and sign-in went through"
    );
}
