//! Benchmark: while a sign-in flood saturates the KDF pool, protected pages keep being served.
//!
//! Starts the release binary (`target/release/gatehouse`; `scripts/flood.sh` builds it first)
//! on 127.0.0.1 with a fresh temporary database, the default Argon2 costs, the default KDF
//! threads and workers, and the per-address limits and the username lock out of the way. Then,
//! alternately for `ROUNDS` rounds:
//!
//! * phase A ("idle"): an open-loop probe — `PROBE_RATE` requests a second, each sent on its
//!   schedule whatever the earlier ones are doing — of `GET /welcome` with a session cookie;
//! * phase B ("flood"): the same probe while `FLOOD_CONNECTIONS` connections post
//!   `POST /api/session` (right and wrong passwords over `FLOOD_USERS` users) back to back.
//!
//! A probe's latency runs from the moment its request starts to the end of its body; a probe
//! that times out (`PROBE_TIMEOUT`) or is not a 200 is a failure and counts as the timeout in
//! the percentiles. Prints a Markdown table per round, the medians of the rounds, the p99 and
//! p50 ratios flood/idle (goal: p99 ≤ 3× idle) and the sign-ins completed per second.
//!
//! Run: `scripts/flood.sh` (or `cargo build --release --locked && cargo bench --bench flood`).

#[path = "support/mod.rs"]
mod support;
use support::{Server, credentials, ms, percentile};

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use tokio::task::JoinSet;

const ROUNDS: usize = 3;
const PHASE: Duration = Duration::from_secs(10);
const PROBE_RATE: u32 = 50;
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const FLOOD_CONNECTIONS: usize = 64;
const FLOOD_USERS: usize = 200;
/// The flood starts this long before the probe, so the probe sees a saturated pool.
const FLOOD_RAMP: Duration = Duration::from_millis(500);
/// Pause after a flood has drained, before the next idle phase.
const SETTLE: Duration = Duration::from_secs(1);
/// Upper bound of requests per flood connection per phase (the phase's time bounds it first).
const FLOOD_MAX_PER_CONNECTION: usize = 10_000;
const FLOOD_TIMEOUT: Duration = Duration::from_secs(30);
const P99_GOAL: f64 = 3.0;

// ---------------------------------------------------------------------------------------------
// Helpers

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("HTTP client")
}

fn flood_user(i: usize) -> (String, String) {
    (format!("flood_{i:03}"), format!("flood password {i}"))
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn create_user(client: &reqwest::Client, server_url: &str, username: &str, password: &str) {
    let resp = client
        .post(server_url)
        .header(CONTENT_TYPE, "application/json")
        .body(credentials(username, password))
        .send()
        .await
        .expect("POST /api/users");
    assert_eq!(resp.status().as_u16(), 201, "creating {username}");
}

/// Signs in through the API and returns the `Cookie` header value of the new session.
async fn session_cookie(server: &Server, username: &str, password: &str) -> String {
    let resp = client(Duration::from_secs(30))
        .post(server.url("/api/session"))
        .header(CONTENT_TYPE, "application/json")
        .body(credentials(username, password))
        .send()
        .await
        .expect("POST /api/session");
    assert_eq!(resp.status().as_u16(), 204, "signing in {username}");
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Probe and flood

/// One phase of the probe: latencies of the 200s, and the failures.
struct Probe {
    ok: Vec<Duration>,
    failed: usize,
}

impl Probe {
    /// Sorted latencies with each failure counted as the timeout.
    fn sorted(&self) -> Vec<Duration> {
        let mut all = self.ok.clone();
        all.extend(std::iter::repeat_n(PROBE_TIMEOUT, self.failed));
        all.sort();
        all
    }
    fn p(&self, p: f64) -> Duration {
        percentile(&self.sorted(), p)
    }
}

/// `GET /welcome` `PROBE_RATE` times a second for `PHASE`, open-loop: each request is started
/// on its own schedule, whether or not the earlier ones have finished.
async fn probe(url: String, cookie: String) -> Probe {
    let client = client(PROBE_TIMEOUT);
    let period = Duration::from_secs(1) / PROBE_RATE;
    let count = (PHASE.as_secs_f64() * f64::from(PROBE_RATE)) as u32;
    let start = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..count {
        tokio::time::sleep_until(start + period * i).await;
        let (client, url, cookie) = (client.clone(), url.clone(), cookie.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let resp = client.get(&url).header(COOKIE, &cookie).send().await;
            let ok = match resp {
                Ok(r) if r.status().as_u16() == 200 => r.bytes().await.is_ok(),
                _ => false,
            };
            ok.then(|| sent.elapsed())
        });
    }
    let mut result = Probe {
        ok: Vec::with_capacity(count as usize),
        failed: 0,
    };
    while let Some(r) = tasks.join_next().await {
        match r.expect("probe task") {
            Some(latency) => result.ok.push(latency),
            None => result.failed += 1,
        }
    }
    result
}

/// What the flood saw: statuses of the sign-ins that completed in the window, and how long
/// the window was.
#[derive(Default)]
struct Flood {
    window: Duration,
    completed: usize,
    s204: usize,
    s401: usize,
    s503: usize,
    other: usize,
    errors: usize,
    latencies: Vec<Duration>,
}

/// One flood connection: sign-ins back to back until `until`; returns (finished at, status or
/// 0 for a transport error, latency) per request.
async fn flood_connection(
    url: String,
    conn: usize,
    until: Instant,
) -> Vec<(Instant, u16, Duration)> {
    let client = client(FLOOD_TIMEOUT);
    let mut out = Vec::new();
    for n in 0..FLOOD_MAX_PER_CONNECTION {
        if Instant::now() >= until {
            break;
        }
        let (username, right) = flood_user((conn * 37 + n * 13) % FLOOD_USERS);
        let password = if (conn + n).is_multiple_of(2) {
            right
        } else {
            format!("wrong password {n}")
        };
        let sent = Instant::now();
        let status = match client
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(credentials(&username, &password))
            .send()
            .await
        {
            Ok(r) => {
                let s = r.status().as_u16();
                if r.bytes().await.is_ok() { s } else { 0 }
            }
            Err(_) => 0,
        };
        let done = Instant::now();
        out.push((done, status, done - sent));
    }
    out
}

/// Runs the flood and, once it is under way, the probe; waits for the flood to drain.
async fn flood_phase(server: &Server, cookie: &str) -> (Probe, Flood) {
    let flood_start = Instant::now();
    let window_start = flood_start + FLOOD_RAMP;
    let window_end = window_start + PHASE;
    let mut connections = JoinSet::new();
    for conn in 0..FLOOD_CONNECTIONS {
        connections.spawn(flood_connection(
            server.url("/api/session"),
            conn,
            window_end,
        ));
    }
    tokio::time::sleep(FLOOD_RAMP).await;
    let probed = probe(server.url("/welcome"), cookie.to_string()).await;
    let mut flood = Flood {
        window: window_end.saturating_duration_since(window_start),
        ..Flood::default()
    };
    while let Some(r) = connections.join_next().await {
        for (done, status, latency) in r.expect("flood task") {
            if done < window_start || done > window_end {
                continue;
            }
            flood.completed += 1;
            flood.latencies.push(latency);
            match status {
                204 => flood.s204 += 1,
                401 => flood.s401 += 1,
                503 => flood.s503 += 1,
                0 => flood.errors += 1,
                _ => flood.other += 1,
            }
        }
    }
    flood.latencies.sort();
    (probed, flood)
}

impl Flood {
    fn per_second(&self) -> f64 {
        (self.s204 + self.s401) as f64 / self.window.as_secs_f64()
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let server = Server::start(&[
        "--ip-failures",
        "0",
        "--ip-kdf-rate",
        "0",
        "--lock-attempts",
        "1000000",
    ]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(&server));
    drop(server);
    eprintln!(
        "flood benchmark finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

async fn run(server: &Server) {
    // Users: the probe's, and the flood's (sign-ups run the KDF, so a few at a time).
    let seed_started = Instant::now();
    let users_url = server.url("/api/users");
    let seeder = client(Duration::from_secs(60));
    create_user(&seeder, &users_url, "probe_user", "probe password 1").await;
    let mut seeding = JoinSet::new();
    for lane in 0..4 {
        let (seeder, users_url) = (seeder.clone(), users_url.clone());
        seeding.spawn(async move {
            for i in (lane..FLOOD_USERS).step_by(4) {
                let (u, p) = flood_user(i);
                create_user(&seeder, &users_url, &u, &p).await;
            }
        });
    }
    while let Some(r) = seeding.join_next().await {
        r.expect("seeding task");
    }
    let cookie = session_cookie(server, "probe_user", "probe password 1").await;
    eprintln!(
        "seeded {} users in {:.1} s; warming up",
        FLOOD_USERS + 1,
        seed_started.elapsed().as_secs_f64()
    );

    // Warm-up (discarded): the cookie works, connections and caches are warm.
    let warm = client(PROBE_TIMEOUT);
    for _ in 0..50 {
        let r = warm
            .get(server.url("/welcome"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .expect("GET /welcome");
        assert_eq!(r.status().as_u16(), 200, "the probe's session works");
        r.bytes().await.expect("body");
    }

    let load_before = load_average();
    let server_pid = server.pid();
    let mut rounds = Vec::new();
    let mut sched_rounds = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("round {round}/{ROUNDS}: idle");
        let before = Threads::snapshot(server_pid);
        let idle = probe(server.url("/welcome"), cookie.clone()).await;
        let mid = Threads::snapshot(server_pid);
        eprintln!("round {round}/{ROUNDS}: flood");
        let (flooded, flood) = flood_phase(server, &cookie).await;
        let after = Threads::snapshot(server_pid);
        tokio::time::sleep(SETTLE).await;
        rounds.push((idle, flooded, flood));
        if let (Some(b), Some(m), Some(a)) = (before, mid, after) {
            sched_rounds.push((m.since(&b), a.since(&m)));
        }
    }
    let load_after = load_average();

    println!();
    println!(
        "### Flood: `GET /welcome` at {PROBE_RATE}/s (open loop), idle vs. {FLOOD_CONNECTIONS} connections flooding `POST /api/session`"
    );
    println!();
    println!(
        "{} s per phase, {ROUNDS} rounds alternating, default Argon2 (m=19456, t=2, p=1), default KDF threads and workers, {} cores; latencies in ms, a failure counts as {} ms",
        PHASE.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        PROBE_TIMEOUT.as_millis()
    );
    println!();
    println!(
        "| round | idle p50 | idle p99 | idle fail | flood p50 | flood p99 | flood fail | p50 × | p99 × | sign-ins/s | sign-in p50 | 204 | 401 | 503 | other | errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 15];
    for (i, (idle, flooded, flood)) in rounds.iter().enumerate() {
        let sign_in_p50 = if flood.latencies.is_empty() {
            f64::NAN
        } else {
            ms(percentile(&flood.latencies, 50.0))
        };
        let row = [
            ms(idle.p(50.0)),
            ms(idle.p(99.0)),
            idle.failed as f64,
            ms(flooded.p(50.0)),
            ms(flooded.p(99.0)),
            flooded.failed as f64,
            ms(flooded.p(50.0)) / ms(idle.p(50.0)),
            ms(flooded.p(99.0)) / ms(idle.p(99.0)),
            flood.per_second(),
            sign_in_p50,
            flood.s204 as f64,
            flood.s401 as f64,
            flood.s503 as f64,
            flood.other as f64,
            flood.errors as f64,
        ];
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(v);
        }
        println!("| {} | {} |", i + 1, format_row(&row));
    }
    let medians: Vec<f64> = cols.into_iter().map(median_f64).collect();
    println!("| median | {} |", format_row(&medians));
    println!();
    print_where_the_time_goes(&sched_rounds, &load_before, &load_after);

    let p99_ratio = medians[4] / medians[1];
    let p50_ratio = medians[3] / medians[0];
    let met = p99_ratio <= P99_GOAL;
    println!(
        "Medians of {ROUNDS} rounds: p99 idle {:.2} ms, flood {:.2} ms, ratio of the medians {p99_ratio:.3} (goal ≤ {P99_GOAL}: {}); p50 idle {:.2} ms, flood {:.2} ms, ratio of the medians {p50_ratio:.3}; KDF throughput under flood {:.1} sign-ins/s (sign-in latency p50 {:.0} ms).",
        medians[1],
        medians[4],
        if met { "met" } else { "MISSED" },
        medians[0],
        medians[3],
        medians[8],
        medians[9],
    );
}

// ---------------------------------------------------------------------------------------------
// Where the time goes: Linux per-thread scheduler statistics (/proc/PID/task/TID/schedstat:
// nanoseconds on a CPU, nanoseconds runnable but waiting for a CPU, runs), summed per thread
// group, for the server and for this benchmark process itself. Skipped where unavailable.

#[derive(Default, Clone, Copy)]
struct Sched {
    cpu_ns: u64,
    wait_ns: u64,
    runs: u64,
}

impl Sched {
    fn since(&self, earlier: &Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
            runs: self.runs.saturating_sub(earlier.runs),
        }
    }
    fn add(&mut self, other: &Self) {
        self.cpu_ns += other.cpu_ns;
        self.wait_ns += other.wait_ns;
        self.runs += other.runs;
    }
    fn cpu_ms(&self) -> f64 {
        self.cpu_ns as f64 / 1e6
    }
    fn wait_ms(&self) -> f64 {
        self.wait_ns as f64 / 1e6
    }
    fn wait_per_run_us(&self) -> f64 {
        self.wait_ns as f64 / 1e3 / self.runs.max(1) as f64
    }
}

/// The server's HTTP workers, its KDF threads, the rest of it, and this benchmark process.
#[derive(Default, Clone, Copy)]
struct Threads {
    workers: Sched,
    kdf: Sched,
    server_other: Sched,
    bench: Sched,
}

fn read_sched(pid: &str, mut each: impl FnMut(&str, Sched)) -> Option<()> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue; // the thread just ended
        };
        let f: Vec<u64> = stat
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [cpu_ns, wait_ns, runs] = f[..] {
            each(
                comm.trim(),
                Sched {
                    cpu_ns,
                    wait_ns,
                    runs,
                },
            );
        }
    }
    Some(())
}

impl Threads {
    fn snapshot(server_pid: u32) -> Option<Self> {
        let mut t = Self::default();
        read_sched(&server_pid.to_string(), |comm, s| {
            if comm.starts_with("kdf-") {
                t.kdf.add(&s)
            } else if comm.starts_with("actix-rt|system") {
                t.workers.add(&s)
            } else {
                t.server_other.add(&s)
            }
        })?;
        read_sched("self", |_, s| t.bench.add(&s))?;
        Some(t)
    }
    fn since(&self, earlier: &Self) -> Self {
        Self {
            workers: self.workers.since(&earlier.workers),
            kdf: self.kdf.since(&earlier.kdf),
            server_other: self.server_other.since(&earlier.server_other),
            bench: self.bench.since(&earlier.bench),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn print_where_the_time_goes(rounds: &[(Threads, Threads)], load_before: &str, load_after: &str) {
    if rounds.is_empty() {
        return;
    }
    println!(
        "Where the time goes (Linux schedstat, medians of {} rounds; CPU = time on a core, wait = runnable but waiting for a core; the flood phase includes its ramp and drain; load average before {load_before}, after {load_after}):",
        rounds.len()
    );
    println!();
    println!(
        "| phase | workers CPU ms | workers wait ms | workers wait/run µs | KDF CPU ms | KDF wait ms | server other CPU ms | bench client CPU ms | bench client wait ms |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (name, pick) in [
        (
            "idle",
            (|r: &(Threads, Threads)| r.0) as fn(&(Threads, Threads)) -> Threads,
        ),
        ("flood", |r| r.1),
    ] {
        let col =
            |f: &dyn Fn(&Threads) -> f64| median_f64(rounds.iter().map(|r| f(&pick(r))).collect());
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            col(&|t| t.workers.cpu_ms()),
            col(&|t| t.workers.wait_ms()),
            col(&|t| t.workers.wait_per_run_us()),
            col(&|t| t.kdf.cpu_ms()),
            col(&|t| t.kdf.wait_ms()),
            col(&|t| t.server_other.cpu_ms()),
            col(&|t| t.bench.cpu_ms()),
            col(&|t| t.bench.wait_ms()),
        );
    }
    println!();
}

fn format_row(values: &[f64]) -> String {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match i {
            2 | 5 | 10..=14 => format!("{v:.0}"),
            6 | 7 => format!("{v:.2}"),
            8 => format!("{v:.1}"),
            9 => format!("{v:.0}"),
            _ => format!("{v:.2}"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
