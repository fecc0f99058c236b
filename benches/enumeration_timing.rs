//! Benchmark: no user enumeration by timing. A failed sign-in must take as long for an unknown
//! username as for a known one with a wrong password (docs/behaviour.md §3: the same KDF work for
//! all), also for a *dormant* user whose hash still has older, cheaper Argon2 costs.
//!
//! Starts the release binary (`target/release/gatehouse`; `scripts/timing.sh` builds it first)
//! on 127.0.0.1 with a fresh temporary database and the per-address limits and the username
//! lock out of the way. First with cheap costs (`OLD_COST`) to create `KNOWN_USERS` dormant
//! users, then restarted on the same database with the default costs, where it creates
//! `KNOWN_USERS` more (current costs). It then measures `SAMPLES` (env, default 200) sign-ins
//! of each kind, interleaved (unknown, known, dormant, unknown, …), one at a time on one
//! keep-alive connection so nothing queues. Every answer must be a 401 (a wrong password never
//! re-hashes, so the dormant users stay dormant). Prints p10 / median / p90 per kind and the
//! median ratios unknown/known and unknown/dormant (target 0.95–1.05 each).
//!
//! Then, restarted once more with mail on (`--smtp-url` to a closed local port, so every mail
//! waits in the outbox, and a per-account budget too large to matter), it times `POST
//! /password-reset` (the HTML form) for a known login with a verified email (a token and a
//! queued mail each, up to the outbox's per-address bound) against an unknown login,
//! `SAMPLES` of each but at least 1000 (they cost well under a millisecond), interleaved in
//! ABBA order, and prints the same table and median ratio.
//!
//! Run: `scripts/timing.sh` (or `cargo build --release --locked && cargo bench --bench
//! enumeration_timing`; `SAMPLES=500 scripts/timing.sh` for more samples).

#[path = "support/mod.rs"]
mod support;
use support::{Server, credentials, ms, percentile};

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;

const KNOWN_USERS: usize = 50;
const DEFAULT_SAMPLES: usize = 200;
const MAX_SAMPLES: usize = 100_000;
const WARM_UP_PAIRS: usize = 10;
const TARGET: (f64, f64) = (0.95, 1.05);
/// The older, cheaper Argon2 costs the dormant users were created with.
const OLD_COST: &[&str] = &["--argon2-m", "4096", "--argon2-t", "1", "--argon2-p", "1"];
/// The per-address limits and the username lock out of the way.
const LIMITS_OFF: &[&str] = &[
    "--ip-failures",
    "0",
    "--ip-kdf-rate",
    "0",
    "--lock-attempts",
    "1000000",
];

// ---------------------------------------------------------------------------------------------
// Helpers

fn samples_from_env() -> usize {
    match std::env::var("SAMPLES") {
        Ok(s) => {
            let n: usize = s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("SAMPLES={s:?} is not a number"));
            assert!(
                (1..=MAX_SAMPLES).contains(&n),
                "SAMPLES must be 1..={MAX_SAMPLES}"
            );
            n
        }
        Err(_) => DEFAULT_SAMPLES,
    }
}

/// One sign-in, timed from the start of the request to the end of the answer's body.
async fn sign_in(
    client: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
) -> (u16, Duration) {
    let body = credentials(username, password);
    let sent = Instant::now();
    let resp = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /api/session");
    let status = resp.status().as_u16();
    resp.bytes().await.expect("answer body");
    (status, sent.elapsed())
}

fn known_user(i: usize) -> String {
    format!("known_{:03}", i % KNOWN_USERS)
}

fn dormant_user(i: usize) -> String {
    format!("dormant_{:03}", i % KNOWN_USERS)
}

async fn create_users(client: &reqwest::Client, server: &Server, name: fn(usize) -> String) {
    let users_url = server.url("/api/users");
    for i in 0..KNOWN_USERS {
        let resp = client
            .post(&users_url)
            .header(CONTENT_TYPE, "application/json")
            .body(credentials(&name(i), &format!("right password {i}")))
            .send()
            .await
            .expect("POST /api/users");
        assert_eq!(resp.status().as_u16(), 201, "creating {}", name(i));
        resp.bytes().await.expect("body");
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let samples = samples_from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut server = Server::start(&[LIMITS_OFF, OLD_COST].concat());
    runtime.block_on(async {
        create_users(&http_client(), &server, dormant_user).await;
    });
    eprintln!(
        "created {KNOWN_USERS} dormant users with {}; restarting with the default costs",
        OLD_COST.join(" ")
    );
    server.restart(LIMITS_OFF);
    runtime.block_on(run(&server, samples));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let smtp = format!("smtp://127.0.0.1:{closed_port}");
    let mail_on: &[&str] = &[
        "--smtp-url",
        &smtp,
        "--public-url",
        "http://127.0.0.1",
        "--reset-mails-per-hour",
        "1000000",
        "--mail-retry-base",
        "10m",
    ];
    server.restart(&[LIMITS_OFF, mail_on].concat());
    runtime.block_on(run_reset(&server, samples));
    drop(server);
    eprintln!(
        "timing benchmark finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// One keep-alive connection, one request at a time: no queueing anywhere.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

async fn run(server: &Server, samples: usize) {
    let client = http_client();
    create_users(&client, server, known_user).await;
    eprintln!("created {KNOWN_USERS} users; sampling {samples} sign-ins of each kind");

    let session_url = server.url("/api/session");
    // Warm-up pairs (discarded), with their own unknown names.
    for i in 0..WARM_UP_PAIRS {
        let (s, _) = sign_in(&client, &session_url, &format!("warmup_{i:04}"), "x").await;
        assert_eq!(s, 401, "warm-up sign-in of an unknown user");
        let (s, _) = sign_in(&client, &session_url, &known_user(i), "wrong password").await;
        assert_eq!(s, 401, "warm-up sign-in of a known user");
        let (s, _) = sign_in(&client, &session_url, &dormant_user(i), "wrong password").await;
        assert_eq!(s, 401, "warm-up sign-in of a dormant user");
    }

    let mut unknown = Vec::with_capacity(samples);
    let mut known = Vec::with_capacity(samples);
    let mut dormant = Vec::with_capacity(samples);
    let mut paired = Vec::with_capacity(samples);
    let mut statuses: Vec<(u16, &str)> = Vec::new();
    let sampling = Instant::now();
    for i in 0..samples {
        // Distinct, well-formed, never created; the same shape as the known names.
        let ghost = format!("ghost_{i:05}");
        let wrong = format!("wrong password {i}");
        let (su, tu) = sign_in(&client, &session_url, &ghost, &wrong).await;
        let (sk, tk) = sign_in(&client, &session_url, &known_user(i), &wrong).await;
        let (sd, td) = sign_in(&client, &session_url, &dormant_user(i), &wrong).await;
        for (status, kind) in [(su, "unknown"), (sk, "known"), (sd, "dormant")] {
            if status != 401 {
                statuses.push((status, kind));
            }
        }
        unknown.push(tu);
        known.push(tk);
        dormant.push(td);
        paired.push(tu.as_secs_f64() - tk.as_secs_f64());
    }
    let sampling = sampling.elapsed();
    assert!(
        statuses.is_empty(),
        "every sample must be a 401 (no 429 may slip in); got {} others, first: {:?}",
        statuses.len(),
        &statuses[..statuses.len().min(5)]
    );

    unknown.sort();
    known.sort();
    dormant.sort();
    paired.sort_by(f64::total_cmp);
    let mean = |v: &[Duration]| v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    let row = |name: &str, v: &[Duration]| {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            v.len(),
            ms(percentile(v, 10.0)),
            ms(percentile(v, 50.0)),
            ms(percentile(v, 90.0)),
            mean(v)
        );
    };
    let ratio = |p: f64| ms(percentile(&unknown, p)) / ms(percentile(&known, p));
    let median_ratio = ratio(50.0);
    let ratio_dormant = |p: f64| ms(percentile(&unknown, p)) / ms(percentile(&dormant, p));
    let median_ratio_dormant = ratio_dormant(50.0);
    let paired_median_ms = paired[paired.len() / 2] * 1e3;

    println!();
    println!(
        "### Enumeration timing: failed `POST /api/session`, unknown username vs. known username with a wrong password"
    );
    println!();
    println!(
        "Default Argon2 (m=19456, t=2, p=1); the dormant users' hashes have m=4096, t=1, p=1 (created before a restart with the default costs); {samples} samples of each kind, interleaved, sequential on one keep-alive connection, all 401; {:.1} s of sampling; latencies in ms",
        sampling.as_secs_f64()
    );
    println!();
    println!("| kind | samples | p10 | median | p90 | mean |");
    println!("|---|--:|--:|--:|--:|--:|");
    row("unknown username", &unknown);
    row("known username, wrong password", &known);
    row(
        "dormant username (old cheaper costs), wrong password",
        &dormant,
    );
    println!(
        "| ratio unknown/known | | {:.3} | {:.3} | {:.3} | {:.3} |",
        ratio(10.0),
        median_ratio,
        ratio(90.0),
        mean(&unknown) / mean(&known)
    );
    println!(
        "| ratio unknown/dormant | | {:.3} | {:.3} | {:.3} | {:.3} |",
        ratio_dormant(10.0),
        median_ratio_dormant,
        ratio_dormant(90.0),
        mean(&unknown) / mean(&dormant)
    );
    println!();
    let verdict = |r: f64| {
        if (TARGET.0..=TARGET.1).contains(&r) {
            "met"
        } else {
            "MISSED"
        }
    };
    println!(
        "Median ratio unknown/known {median_ratio:.3}, unknown/dormant {median_ratio_dormant:.3} (target {:.2}–{:.2}: {}, {}); median paired difference (unknown − known) {paired_median_ms:+.2} ms.",
        TARGET.0,
        TARGET.1,
        verdict(median_ratio),
        verdict(median_ratio_dormant)
    );
}

// ---------------------------------------------------------------------------------------------
// POST /password-reset: known login with a verified email vs. unknown login

/// Accounts with a verified email for the reset cells: each takes 10 mails an hour (the outbox's
/// per-address bound), so every known sample up to `RESET_USERS * 10` does the whole work.
const RESET_USERS: usize = 100;
/// Reset requests cost well under a millisecond: at least this many samples of each kind, so
/// that scheduling noise on a shared machine averages out.
const MIN_RESET_SAMPLES: usize = 1000;

fn reset_user(i: usize) -> String {
    format!("reset_{:03}", i % RESET_USERS)
}

/// One reset request through the HTML form, timed from the start of the request to the end of
/// the answer's body; returns the status, the time and the body.
async fn ask_reset(
    client: &reqwest::Client,
    url: &str,
    csrf: &str,
    login: &str,
) -> (u16, Duration, Vec<u8>) {
    let sent = Instant::now();
    let resp = client
        .post(url)
        .form(&[("login", login), ("csrf_token", csrf)])
        .send()
        .await
        .expect("POST /password-reset");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("answer body").to_vec();
    (status, sent.elapsed(), body)
}

async fn run_reset(server: &Server, samples: usize) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    for i in 0..RESET_USERS {
        let body = serde_json::json!({
            "username": reset_user(i),
            "password": format!("right password {i}"),
            "email": format!("{}@example.org", reset_user(i)),
        });
        let resp = client
            .post(server.url("/api/users"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST /api/users");
        assert_eq!(resp.status().as_u16(), 201, "creating {}", reset_user(i));
    }
    // Verified addresses (the verification flow has its own tests).
    let db = rusqlite::Connection::open(server.database()).expect("open the database");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let verified = db
        .execute(
            "UPDATE users SET email_verified_at = 1 WHERE email IS NOT NULL",
            [],
        )
        .expect("mark verified");
    assert_eq!(verified, RESET_USERS);
    let samples = samples.max(MIN_RESET_SAMPLES);

    let page = client
        .get(server.url("/password-reset"))
        .send()
        .await
        .expect("GET /password-reset")
        .text()
        .await
        .expect("page");
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("a CSRF token on the form") + marker.len();
    let csrf = page[start..start + page[start..].find('"').expect("token end")].to_owned();
    let url = server.url("/password-reset");
    eprintln!(
        "created {RESET_USERS} users with verified emails; sampling {samples} reset requests of each kind"
    );
    for i in 0..WARM_UP_PAIRS {
        let (s, _, _) = ask_reset(&client, &url, &csrf, &format!("ghost_{i:03}")).await;
        assert_eq!(s, 200, "warm-up request for an unknown login");
        let (s, _, _) = ask_reset(&client, &url, &csrf, &reset_user(i)).await;
        assert_eq!(s, 200, "warm-up request for a known login");
    }

    let mut unknown = Vec::with_capacity(samples);
    let mut known = Vec::with_capacity(samples);
    let mut odd: Vec<(u16, &str)> = Vec::new();
    let mut bodies = std::collections::HashSet::new();
    let sampling = Instant::now();
    for i in 0..samples {
        // Same shape as the known names, never created. ABBA order (unknown first in even
        // pairs, known first in odd ones): each kind follows each kind equally often, so the
        // work a known request leaves behind weighs on both columns alike.
        let ghost = format!("ghost_{:03}", i % 1000);
        let ((su, tu, bu), (sk, tk, bk)) = if i % 2 == 0 {
            let u = ask_reset(&client, &url, &csrf, &ghost).await;
            (u, ask_reset(&client, &url, &csrf, &reset_user(i)).await)
        } else {
            let k = ask_reset(&client, &url, &csrf, &reset_user(i)).await;
            (ask_reset(&client, &url, &csrf, &ghost).await, k)
        };
        for (status, kind) in [(su, "unknown"), (sk, "known")] {
            if status != 200 {
                odd.push((status, kind));
            }
        }
        bodies.insert(bu);
        bodies.insert(bk);
        unknown.push(tu);
        known.push(tk);
    }
    let sampling = sampling.elapsed();
    assert!(
        odd.is_empty(),
        "every sample must be a 200; got {} others, first: {:?}",
        odd.len(),
        &odd[..odd.len().min(5)]
    );
    assert_eq!(bodies.len(), 1, "every answer must be the same page");
    // The known requests did their work: tokens made and mail queued (after the answers).
    // Each known request mails until its address reaches the outbox's bound of 10 an hour.
    let expected = (WARM_UP_PAIRS + samples).min(RESET_USERS * 10) as i64;
    let deadline = Instant::now() + Duration::from_secs(10);
    let queued = loop {
        let queued: i64 = db
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .expect("count the outbox");
        if queued >= expected || Instant::now() > deadline {
            break queued;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(queued, expected, "the known requests queued their mails");

    unknown.sort();
    known.sort();
    let mean = |v: &[Duration]| v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    let row = |name: &str, v: &[Duration]| {
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            v.len(),
            ms(percentile(v, 10.0)),
            ms(percentile(v, 50.0)),
            ms(percentile(v, 90.0)),
            mean(v)
        );
    };
    let ratio = |p: f64| ms(percentile(&unknown, p)) / ms(percentile(&known, p));
    let median_ratio = ratio(50.0);
    println!();
    println!(
        "### Enumeration timing: `POST /password-reset`, unknown login vs. known login with a verified email"
    );
    println!();
    println!(
        "{samples} samples of each kind, interleaved in ABBA order, sequential on one keep-alive connection, all 200 with one identical body; {queued} reset mails queued by the known requests (outbox bound: 10 per address an hour, {RESET_USERS} addresses); {:.1} s of sampling; latencies in ms",
        sampling.as_secs_f64()
    );
    println!();
    println!("| kind | samples | p10 | median | p90 | mean |");
    println!("|---|--:|--:|--:|--:|--:|");
    row("unknown login", &unknown);
    row("known login, verified email", &known);
    println!(
        "| ratio unknown/known | | {:.3} | {:.3} | {:.3} | {:.3} |",
        ratio(10.0),
        median_ratio,
        ratio(90.0),
        mean(&unknown) / mean(&known)
    );
    println!();
    println!(
        "Median ratio unknown/known {median_ratio:.3} (target {:.2}–{:.2}: {}).",
        TARGET.0,
        TARGET.1,
        if (TARGET.0..=TARGET.1).contains(&median_ratio) {
            "met"
        } else {
            "MISSED"
        }
    );
}
