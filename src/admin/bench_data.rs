//! `gatehouse bench-data` (hidden): a benchmark database in seconds. Users `bench0…` share one
//! precomputed Argon2id hash, except the first `--sign-in-users`, which get their own (password
//! [`PASSWORD`]) so a benchmark can sign many of them in at once without tripping the
//! fail-lock (parallel attempts on one name count as parallel guesses). Sessions have
//! predictable ids ([`session_id`]), which is why this refuses a database that holds any other
//! user. The predictable ids live here, not on `SessionId`: the server itself never makes one.

use super::{Result, hash_all, refused, wait};
use crate::cli::{BenchDataArgs, Config};
use crate::clock::now_ms;
use crate::progress::{Progress, Unit};
use crate::security::digest::PasswordDigest;
use crate::security::password::Kdf;
use crate::security::session::SessionId;
use crate::store::Store;

pub const PASSWORD: &str = "bench-password";
const PREFIX: &str = "bench";
const BATCH: u64 = 20_000;

/// The predictable id of benchmark session `n`: a valid v4 UUID (fixed bytes, `n` in the last
/// eight), so it passes [`SessionId::parse`] like any browser's cookie. Only bench databases
/// hold such sessions.
pub fn session_id(n: u64) -> SessionId {
    let mut bytes = [0x42u8; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    SessionId::parse(&uuid.hyphenated().to_string()).expect("a hyphenated v4 UUID")
}

pub fn run(config: &Config, args: &BenchDataArgs) -> Result<()> {
    let (users, sessions) = (args.users, args.sessions);
    if sessions > users {
        return refused("--sessions cannot exceed --users (one session per user)");
    }
    let signers = args.sign_in_users.min(users);
    let store = Store::open_with(&config.database, &config.pg_options())?;
    if wait(store.count_users_outside(PREFIX))? > 0 {
        return refused(format!(
            "{} holds real users; bench-data only fills a fresh database",
            config.database.display()
        ));
    }
    let kdf = Kdf::new(config.kdf_params())?;
    let digest = |n: u64| PasswordDigest::compute(&format!("{PREFIX}{n}"), PASSWORD);
    let started = std::time::Instant::now();
    // Counts users written; a sign-in user counts once hashed, just before it is written.
    let progress = Progress::start("bench-data", users, Unit::Items("users written"));
    let digests: Vec<PasswordDigest> = (0..signers).map(digest).collect();
    let own_hashes = hash_all(
        &kdf,
        &digests.iter().collect::<Vec<_>>(),
        config.kdf_threads,
        &progress,
    )?;
    let shared = kdf.hash(&digest(0))?;
    let now = now_ms();
    // One session for each of the first `sessions` users.
    let session = move |n: u64| (n < sessions).then(|| session_id(n));
    // Far-off absolute expiry: the benchmark sets its own --session-idle.
    let expires = now + 30 * 24 * 3600 * 1000;
    for (n, hash) in (0..signers).zip(&own_hashes) {
        wait(store.bench_fill(PREFIX, n..n + 1, session, hash, now, expires))?;
    }
    let mut from = signers;
    while from < users {
        let to = (from + BATCH).min(users);
        wait(store.bench_fill(PREFIX, from..to, session, &shared, now, expires))?;
        progress.inc(to - from);
        from = to;
    }
    progress.finish();
    eprintln!(
        "{users} users ({signers} able to sign in), {sessions} sessions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("username=bench0");
    println!("password={PASSWORD}");
    println!("password_digest={}", digest(0).to_wire());
    if sessions > 0 {
        println!("session_first={}", session_id(0).cookie_value());
        println!("session_last={}", session_id(sessions - 1).cookie_value());
    }
    if let (Some(path), true) = (&args.sample_cookies, sessions > 0) {
        // Spread over the whole table, so lookups touch pages across the index.
        let n = sessions.min(1000);
        let lines: String = (0..n)
            .map(|i| session_id(i * sessions / n).cookie_value() + "\n")
            .collect();
        std::fs::write(path, lines)?;
    }
    if let Some(path) = &args.sign_in_bodies {
        let lines: String = (0..signers)
            .map(|n| {
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("username", &format!("{PREFIX}{n}"))
                    .append_pair("password_digest", &digest(n).to_wire())
                    .finish()
                    + "\n"
            })
            .collect();
        std::fs::write(path, lines)?;
    }
    Ok(())
}

/// Hashes per second of the configured Argon2id on `threads` threads for `seconds`.
pub fn kdf_rate(config: &Config, threads: usize, seconds: f64) -> Result<()> {
    let kdf = Kdf::new(config.kdf_params())?;
    let digest = PasswordDigest::compute("bench0", PASSWORD);
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let started = std::time::Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let jobs: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while std::time::Instant::now() < until {
                        let _ = kdf.hash(&digest);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap_or(0)).sum()
    });
    println!("{:.2}", total as f64 / started.elapsed().as_secs_f64());
    Ok(())
}
