//! Bounded memory under a username spray (docs/behaviour.md §4): an attacker sends one failed
//! sign-in for each of N distinct, well-formed usernames as fast as the server takes them. The
//! fail-lock table must stop at `--lock-max-entries` (refusing new names with 503 instead of
//! evicting a live record), the process's memory must stay bounded accordingly, and a username
//! locked before the spray must still be locked afterwards.
//!
//! Size: `SPRAY_USERNAMES` (default 1 000 000; 30 000 in a debug build when unset, so the
//! normal `cargo test` suite runs it in well under a minute). `SPRAY_LOCK_MAX_ENTRIES`
//! overrides the bound B (default N / 5, i.e. 200 000 for a million names, 6 000 for the debug
//! run), `SPRAY_CONCURRENCY` the number of client connections (default 64). `scripts/spray.sh`
//! runs the full million in release mode.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::TestApp;

/// The lock window: longer than any allowed run, so no record can expire during the spray.
/// Then the table must fill up to exactly B and stay there, and the accounting is exact.
const LOCK_WINDOW: Duration = Duration::from_secs(2 * 3600);

/// Memory one live lock record may cost. A record is a `Username` (a `String`: 24 bytes plus a
/// 32-byte heap block for these names) and a `Record` (`u32` + `Instant`: 24 bytes): 48 bytes
/// in hashbrown's table plus a control byte, at a load between 7/16 and 7/8 after the
/// power-of-two growth, plus the name's block: 90–150 bytes; while the map doubles, the old
/// and the new table coexist. Measured: 111 bytes per record of RSS growth at B = 200 000 in
/// release (the summary line's `rss_growth_bytes_per_record`). 256 is over twice that.
const BYTES_PER_RECORD: u64 = 256;

/// Fixed slack on top of the start-up RSS: buffers for the client connections, per-thread
/// malloc arenas, the KDF's working memory, SQLite's page cache. Measured: about 3 MiB of
/// growth at B = 6 000 (debug), where the records themselves are well under 1 MiB.
///
/// So the bound is start-up + B × 256 B + 16 MiB: 76 MiB for the million-name run, which
/// measured a 30 MiB peak. An unbounded table would hold a record per name there
/// (1 000 000 × 111 B ≈ 106 MiB on top of start-up) and fail this check as well as the
/// `lock_records` one. At the debug size (30 000 names) N × 111 B is under the slack, so
/// there only the `lock_records` check can tell a bounded table from an unbounded one.
const RSS_SLACK_KIB: u64 = 16 * 1024;

struct Plan {
    usernames: usize,
    bound: usize,
    concurrency: usize,
}

fn env_usize(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

impl Plan {
    fn from_env() -> Self {
        let usernames = env_usize("SPRAY_USERNAMES").unwrap_or(if cfg!(debug_assertions) {
            30_000
        } else {
            1_000_000
        });
        let bound = env_usize("SPRAY_LOCK_MAX_ENTRIES").unwrap_or((usernames / 5).max(10));
        assert!(
            bound < usernames,
            "B = {bound} must be below N = {usernames}, or the table never fills"
        );
        Self {
            usernames,
            bound,
            concurrency: env_usize("SPRAY_CONCURRENCY").unwrap_or(64).max(1),
        }
    }

    /// A generous limit for the whole spray: a minute plus 2 ms per name in debug builds (the
    /// gatehouse crate is unoptimised there), 1 ms in release, i.e. 1 060 s for a million.
    /// Refusing a name once the table is full must be cheap: a spray that keeps arriving after
    /// the table fills is exactly the attack, and every sign-in shares the table's lock.
    /// Measured on the 2-core machine: 30 000 names in 12–14 s (debug); a million in 38 s
    /// (release, about 12 000/s while filling and 37 000/s refusing) when a refusal costs
    /// O(1), against about 300 refusals/s (over 45 minutes in all) when every refusal scans
    /// the whole table for expired records.
    fn deadline(&self) -> Duration {
        let per_name_us = if cfg!(debug_assertions) { 2_000 } else { 1_000 };
        Duration::from_secs(60) + Duration::from_micros(per_name_us * self.usernames as u64)
    }
}

/// One `abuse tables` housekeeping line.
#[derive(Debug, Clone, Copy)]
struct Tables {
    lock_records: u64,
    rss_kib: u64,
}

fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn abuse_tables(log: &str) -> Vec<Tables> {
    log.lines()
        .filter(|l| l.contains("abuse tables"))
        .map(|l| Tables {
            lock_records: field(l, "lock_records").unwrap_or_else(|| panic!("bad line: {l}")),
            rss_kib: field(l, "rss_kib").unwrap_or_else(|| panic!("bad line: {l}")),
        })
        .collect()
}

/// Waits for the next `abuse tables` line after the `seen` ones (they come every second).
async fn next_tables(app: &TestApp, seen: usize) -> Vec<Tables> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = abuse_tables(&app.log());
        if t.len() > seen {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no `abuse tables` line within 10 s; log:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Default)]
struct Counts {
    /// 401: the attempt was checked and counted.
    accepted: AtomicUsize,
    /// 503 "being tracked": the lock table is full, the name was refused.
    refused_full: AtomicUsize,
    /// 503 for another reason (KDF queue full, database busy): retried.
    busy_retries: AtomicUsize,
    /// Connection or timeout errors: retried.
    connection_errors: AtomicUsize,
    /// Anything else (429 for a sprayed name, other 5xx, 4xx): a failure.
    unexpected: AtomicUsize,
    /// Names answered when the first full-table refusal came (the end of the filling phase).
    done_when_full: AtomicUsize,
    /// Milliseconds into the spray of the first full-table refusal (0: none yet).
    full_at_ms: AtomicUsize,
}

const WRONG_PASSWORD: &str = "not-the-password-123";

async fn attempt(
    c: &reqwest::Client,
    url: &str,
    username: &str,
) -> Result<(u16, String), reqwest::Error> {
    let r = c
        .post(url)
        .json(&serde_json::json!({ "username": username, "password": WRONG_PASSWORD }))
        .send()
        .await?;
    let status = r.status().as_u16();
    let body = r.text().await?;
    Ok((status, body))
}

/// Sends one failed sign-in per name `spray_<i>` for i from the shared counter until all N are
/// done, retrying a name that was refused only for load so each name really gets counted
/// (unless the lock table is full).
async fn spray_worker(
    c: reqwest::Client,
    url: Arc<String>,
    next: Arc<AtomicUsize>,
    n: usize,
    counts: Arc<Counts>,
    unexpected_samples: Arc<std::sync::Mutex<Vec<String>>>,
    started: Instant,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return;
        }
        let username = format!("spray_{i:07}");
        let mut backoff = Duration::from_millis(2);
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= 1_000, "{username}: still refused after 1000 tries");
            match attempt(&c, &url, &username).await {
                Ok((401, _)) => {
                    counts.accepted.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok((503, body)) if body.contains("being tracked") => {
                    let k = counts.refused_full.fetch_add(1, Ordering::Relaxed);
                    if k == 0 {
                        let ms = started.elapsed().as_millis().max(1) as usize;
                        counts.full_at_ms.store(ms, Ordering::Relaxed);
                        let done = counts.accepted.load(Ordering::Relaxed);
                        counts.done_when_full.store(done, Ordering::Relaxed);
                    }
                    break;
                }
                Ok((503, _)) => {
                    // KDF queue full or database busy: nothing was counted; back off, retry.
                    counts.busy_retries.fetch_add(1, Ordering::Relaxed);
                }
                Ok((status, body)) => {
                    counts.unexpected.fetch_add(1, Ordering::Relaxed);
                    let mut s = unexpected_samples.lock().unwrap();
                    if s.len() < 10 {
                        s.push(format!("{username}: {status} {body}"));
                    }
                    break;
                }
                Err(e) => {
                    let k = counts.connection_errors.fetch_add(1, Ordering::Relaxed);
                    if k < 10 {
                        eprintln!("spray: {username}: {e}");
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }
}

async fn victim_attempt(c: &reqwest::Client, url: &str) -> u16 {
    match attempt(c, url, "victim").await {
        Ok((status, _)) => status,
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_spray_fills_the_lock_table_to_its_bound_and_no_further() {
    let plan = Plan::from_env();
    let bound = plan.bound.to_string();
    let window = humantime::format_duration(LOCK_WINDOW).to_string();
    let app = TestApp::spawn(&[
        "--lock-max-entries",
        &bound,
        "--lock-window",
        &window,
        "--lock-attempts",
        "3",
        // The address limits are off: this is the username table's test, and every request
        // comes from 127.0.0.1.
        "--ip-failures",
        "0",
        "--ip-kdf-rate",
        "0",
        // More queue slots than client connections: a KDF-queue 503 should not happen, but is
        // retried if it does.
        "--kdf-queue",
        "4096",
        // Housekeeping (and its `abuse tables` line) every second.
        "--session-idle",
        "4s",
        // Only warnings plus the housekeeping lines: a million "sign-in failed" info lines
        // would only measure the log pipe.
        "--log-level",
        "warn,gatehouse::server=info,gatehouse::housekeeping=debug",
    ]);
    let url = Arc::new(app.url("/api/session"));
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // The victim: three failures lock it (the third is still a 401, the fourth a 429).
    for _ in 0..3 {
        assert_eq!(victim_attempt(&c, &url).await, 401);
    }
    assert_eq!(victim_attempt(&c, &url).await, 429, "victim locked");

    // Start-up memory: the latest housekeeping line before the spray.
    let before = next_tables(&app, abuse_tables(&app.log()).len()).await;
    let base = *before.last().unwrap();
    let lines_before = before.len();
    let rss_bound_kib = base.rss_kib + plan.bound as u64 * BYTES_PER_RECORD / 1024 + RSS_SLACK_KIB;

    // The spray, with the victim probed every 2 s alongside: each probe must be a 429 (a
    // forgotten record would make it a 401, or a 503 once the table is full). Probes while
    // locked count as failures, so they also keep the lock running however long this takes.
    let counts = Arc::new(Counts::default());
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|_| {
            tokio::spawn(spray_worker(
                c.clone(),
                url.clone(),
                next.clone(),
                plan.usernames,
                counts.clone(),
                samples.clone(),
                started,
            ))
        })
        .collect();
    let probes = Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let probe = {
        let (c, url, probes) = (c.clone(), url.clone(), probes.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let status = victim_attempt(&c, &url).await;
                probes.lock().unwrap().push(status);
            }
        })
    };
    let deadline = plan.deadline();
    let progress = {
        let (next, n) = (next.clone(), plan.usernames);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let done = next.load(Ordering::Relaxed).min(n);
                eprintln!(
                    "spray: {done}/{n} names after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
    let all_done = async {
        for w in workers {
            w.await.expect("spray worker panicked");
        }
    };
    let finished = tokio::time::timeout(deadline, all_done).await;
    let elapsed = started.elapsed();
    progress.abort();
    let spray_ok = finished.is_ok();
    if !spray_ok {
        // Stop the late workers so the checks below see a quiet server.
        aborts.iter().for_each(|a| a.abort());
    }
    probe.abort();
    let probes = probes.lock().unwrap().clone();
    let probes_not_429 = probes.iter().filter(|s| **s != 429).count();

    // The victim is still locked: its live record was never forgotten.
    let victim_end = victim_attempt(&c, &url).await;

    // Every housekeeping line of the run, including one after the spray.
    let tables = next_tables(&app, abuse_tables(&app.log()).len()).await;
    let during = &tables[lines_before..];
    let max_records = during.iter().map(|t| t.lock_records).max().unwrap_or(0);
    let max_rss = during.iter().map(|t| t.rss_kib).max().unwrap_or(0);
    let last = *tables.last().unwrap();

    let accepted = counts.accepted.load(Ordering::Relaxed);
    let refused = counts.refused_full.load(Ordering::Relaxed);
    let busy = counts.busy_retries.load(Ordering::Relaxed);
    let errors = counts.connection_errors.load(Ordering::Relaxed);
    let unexpected = counts.unexpected.load(Ordering::Relaxed);
    let sent = accepted + refused + unexpected;
    let secs = elapsed.as_secs_f64();
    let full_at = match counts.full_at_ms.load(Ordering::Relaxed) {
        0 => secs, // never full
        ms => ms as f64 / 1000.0,
    };
    let filled = counts.done_when_full.load(Ordering::Relaxed);
    let per_record = (max_rss.saturating_sub(base.rss_kib) * 1024) / plan.bound.max(1) as u64;
    println!(
        "spray summary: usernames={sent}/{n} accepted_401={accepted} refused_full_503={refused} \
         busy_503_retried={busy} connection_errors={errors} unexpected={unexpected} \
         elapsed={secs:.1}s requests_per_s={rps:.0} table_full_after={full_at:.1}s \
         filling_rps={fill_rps:.0} refusing_rps={refuse_rps:.0} bound_B={b} max_lock_records={max_records} \
         base_rss_kib={base_rss} max_rss_kib={max_rss} final_rss_kib={final_rss} \
         rss_bound_kib={rss_bound_kib} rss_growth_bytes_per_record={per_record} \
         housekeeping_lines={lines} victim_probes={probe_count} victim_probes_not_429={probes_not_429} \
         victim_at_end={victim_end} {build}",
        n = plan.usernames,
        rps = (sent + busy + errors) as f64 / secs.max(1e-9),
        fill_rps = filled as f64 / full_at.max(1e-9),
        refuse_rps = (sent - filled) as f64 / (secs - full_at).max(1e-9),
        b = plan.bound,
        base_rss = base.rss_kib,
        final_rss = last.rss_kib,
        lines = during.len(),
        probe_count = probes.len(),
        build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );

    assert_eq!(
        unexpected,
        0,
        "unexpected answers (not 401/503): {:?}",
        samples.lock().unwrap()
    );
    let tolerated = (plan.usernames / 10_000).max(10);
    assert!(
        errors <= tolerated,
        "{errors} connection errors (tolerance {tolerated})"
    );

    // (1) The table never held more than B records, on every housekeeping line …
    for t in during {
        assert!(
            t.lock_records <= plan.bound as u64,
            "lock_records={} above the bound {}",
            t.lock_records,
            plan.bound
        );
    }
    // (2) Memory stayed bounded.
    assert!(
        max_rss <= rss_bound_kib,
        "max RSS {max_rss} KiB above the bound {rss_bound_kib} KiB (start-up {} KiB + \
         {} records × {BYTES_PER_RECORD} B + {RSS_SLACK_KIB} KiB)",
        base.rss_kib,
        plan.bound
    );

    // (3) The victim's live record survived the spray.
    assert!(
        probes.iter().all(|s| *s == 429),
        "victim probes during the spray: {probes:?}"
    );
    assert_eq!(
        victim_end, 429,
        "the victim is still locked after the spray"
    );

    // (4) Bounded in time.
    assert!(
        spray_ok,
        "the spray of {} names did not finish within {deadline:?} ({} done)",
        plan.usernames,
        next.load(Ordering::Relaxed).min(plan.usernames)
    );
    assert_eq!(sent, plan.usernames);
    // The spray did reach the bound: exactly B − 1 sprayed names got a record (the
    // victim holds the other slot; nothing expires within the window), all others were refused.
    assert_eq!(
        max_records, plan.bound as u64,
        "the spray never filled the table"
    );
    assert_eq!(accepted, plan.bound - 1, "names accepted into the table");
    assert_eq!(refused, plan.usernames - (plan.bound - 1));
    assert!(
        during.len() as f64 >= secs / 3.0,
        "too few housekeeping lines ({}) in {secs:.0} s",
        during.len()
    );
}
