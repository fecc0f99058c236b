//! Benchmark: which PostgreSQL driver design fits the store (issue 14, point 1). Two designs,
//! modelled as the store would run them, on the same database and statements:
//!
//! * **async** (what `PgStore` does): requests are tokio tasks on a 2-worker runtime that call a
//!   `deadpool-postgres` pool (16 connections, `RecyclingMethod::Fast`, `prepare_cached`) whose
//!   connections' I/O tasks run on a separate 2-thread runtime, as `connect::Spawning` arranges.
//! * **sync**: requests are the same tokio tasks, each handing its call to a fixed pool of 16 OS
//!   threads (`gatehouse::pool::ThreadPool`, the SQLite store's `blocking` pool) where the
//!   thread takes an `r2d2` connection (`r2d2_postgres`, the blocking `postgres` crate) and runs
//!   the statements, prepared once per connection (the sync crate has no statement cache, so
//!   the bench keeps one beside each connection, as a real store would) and without r2d2's
//!   check-out test (deadpool's `Fast` recycling makes none either).
//!
//! Workloads: the session lookup (a point SELECT by a 32-byte token hash, joined to the user,
//! on 10 000 sessions: what a cache miss costs) and a sign-in-like sequence (credentials by
//! username, an `INSERT … ON CONFLICT … DO UPDATE … RETURNING` on a counter row, a transaction
//! inserting a session and deleting the user's oldest beyond 50), each at 16 and 64 concurrent
//! requests (closed loop). Reports requests/s, p50 and p99 latency and the CPU seconds of this
//! process per 1000 requests (getrusage: both runtimes, the pool threads, the drivers), as
//! medians of 3 rounds; within a round the two designs alternate cell by cell (and swap who
//! goes first each round), so both see the same machine noise.
//!
//! Run: `GATEHOUSE_BENCH_PG=postgres://postgres@127.0.0.1:55432/postgres cargo bench --bench
//! pg_drivers` (about 2.5 minutes; `GATEHOUSE_BENCH_SECONDS` sets a cell's length, default 5).
//! It creates its own database on that server and drops it at the end.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::BoxFuture;
use gatehouse::pool::ThreadPool;
use sha2::{Digest, Sha256};

const POOL_SIZE: usize = 16;
/// Users owning the 10 000 looked-up sessions (10 each); as many others sign in, so the
/// sign-ins' cap of 50 sessions never deletes a session the lookups read.
const USERS: i64 = 1_000;
const SESSIONS: i64 = 10_000;
const ROUNDS: usize = 3;
const CONCURRENCY: [usize; 2] = [16, 64];
const WARM_UP: Duration = Duration::from_millis(500);

/// The rows the bench reads, on Gatehouse's own schema (`gatehouse::store::postgres::SCHEMA`,
/// with its triggers: the sign-ins' session deletes notify, as the store's do).
const DATA: &str = "
INSERT INTO users (id, username, password_hash, created_at, updated_at, password_changed_at)
    SELECT i, 'user' || i, '$argon2id$v=19$m=19456,t=2,p=1$' || md5(i::text), 1, 1, 1
    FROM generate_series(1, 2000) i;
INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, user_agent, ip)
    SELECT sha256(convert_to('session' || i, 'UTF8')), 1 + i % 1000, i, i, 9000000000000000,
           'bench', '127.0.0.1'
    FROM generate_series(1, 10000) i;
ANALYZE;
";

// The store's own statements (src/store/postgres/sessions.rs, users.rs), with constants for
// the parameters the bench would not vary; COUNT is the fail-lock reservation's shape
// (limits.rs) without its bound on the table's size.
const LOOKUP: &str = "SELECT s.id, s.created_at, s.last_seen_at, s.expires_at,
                             u.id, u.username, u.email, u.full_name, u.created_at, u.active,
                             u.password_changed_at,
                             (SELECT string_agg(name, ',' ORDER BY name COLLATE \"C\")
                                FROM user_groups WHERE user_id = u.id),
                             u.email_verified_at IS NOT NULL
                      FROM sessions s JOIN users u ON u.id = s.user_id
                      WHERE s.token_hash = $1";
const CREDENTIALS: &str = "SELECT id, password_hash, active, password_changed_at, unlocked_at,
                                  email, email_verified_at IS NOT NULL
                           FROM users WHERE username = $1";
const COUNT: &str = "INSERT INTO fail_lock (kind, key, failures, last_failure, started)
                     VALUES ('user', $1, 1, $2, $2)
                     ON CONFLICT (kind, key) DO UPDATE
                        SET failures = fail_lock.failures + 1, last_failure = EXCLUDED.last_failure
                     RETURNING failures";
const OPEN: &str = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at,
                                          expires_at, user_agent, ip)
                    SELECT $1, id, $3, $3, 9000000000000000, 'bench', '127.0.0.1' FROM users
                    WHERE id = $2 AND password_changed_at = 1 AND active
                    FOR NO KEY UPDATE
                    RETURNING id";
const CAP: &str = "DELETE FROM sessions WHERE id = ANY (ARRAY(
                       SELECT id FROM sessions WHERE user_id = $1
                       ORDER BY created_at DESC, id DESC OFFSET 50))";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Design {
    Async,
    Sync,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Lookup,
    SignIn,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Lookup => "session lookup",
            Workload::SignIn => "sign-in sequence",
        }
    }
}

/// What one request needs: drawn on the request task, so both designs pay the same.
#[derive(Clone, Copy)]
enum Input {
    Lookup([u8; 32]),
    SignIn {
        user: i64,
        token: [u8; 32],
        now: i64,
    },
}

// ---------------------------------------------------------------------------------------------
// The async design: deadpool-postgres, connections on the store's own runtime.

/// Opens each connection on `handle` and spawns its I/O task there (`connect::Spawning`).
struct Spawning(tokio::runtime::Handle);

impl Connect for Spawning {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let config = pg_config.clone();
        let handle = self.0.clone();
        Box::pin(async move {
            let h = handle.clone();
            handle
                .spawn(async move {
                    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                    let io = h.spawn(async move {
                        let _ = connection.await;
                    });
                    Ok((client, io))
                })
                .await
                .expect("the connection runtime stopped")
        })
    }
}

async fn async_call(pool: &Pool, input: Input) {
    let mut client = pool.get().await.expect("deadpool connection");
    match input {
        Input::Lookup(hash) => {
            let st = client.prepare_cached(LOOKUP).await.unwrap();
            let row = client.query_one(&st, &[&&hash[..]]).await.unwrap();
            let name: &str = row.get(5);
            assert!(!name.is_empty());
        }
        Input::SignIn { user, token, now } => {
            let username = format!("user{user}");
            let st = client.prepare_cached(CREDENTIALS).await.unwrap();
            let row = client.query_one(&st, &[&username]).await.unwrap();
            let id: i64 = row.get(0);
            let st = client.prepare_cached(COUNT).await.unwrap();
            let failures: i32 = client
                .query_one(&st, &[&username, &now])
                .await
                .unwrap()
                .get(0);
            assert!(failures > 0);
            let tx = client.transaction().await.unwrap();
            let open = tx.prepare_cached(OPEN).await.unwrap();
            let cap = tx.prepare_cached(CAP).await.unwrap();
            tx.query_one(&open, &[&&token[..], &id, &now])
                .await
                .unwrap();
            tx.execute(&cap, &[&id]).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sync design: r2d2 + postgres on a fixed pool of OS threads.

/// A blocking connection with the statements it has prepared (the sync crate keeps none).
struct Cached {
    client: postgres::Client,
    statements: HashMap<&'static str, postgres::Statement>,
}

impl Cached {
    fn prepare(&mut self, sql: &'static str) -> postgres::Statement {
        if let Some(st) = self.statements.get(sql) {
            return st.clone();
        }
        let st = self.client.prepare(sql).unwrap();
        self.statements.insert(sql, st.clone());
        st
    }
}

struct CachingManager(r2d2_postgres::PostgresConnectionManager<postgres::NoTls>);

impl r2d2::ManageConnection for CachingManager {
    type Connection = Cached;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Cached, postgres::Error> {
        Ok(Cached {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Cached) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Cached) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

fn sync_call(pool: &r2d2::Pool<CachingManager>, input: Input) {
    let mut conn = pool.get().expect("r2d2 connection");
    match input {
        Input::Lookup(hash) => {
            let st = conn.prepare(LOOKUP);
            let row = conn.client.query_one(&st, &[&&hash[..]]).unwrap();
            let name: &str = row.get(5);
            assert!(!name.is_empty());
        }
        Input::SignIn { user, token, now } => {
            let username = format!("user{user}");
            let (credentials, count) = (conn.prepare(CREDENTIALS), conn.prepare(COUNT));
            let (open, cap) = (conn.prepare(OPEN), conn.prepare(CAP));
            let row = conn.client.query_one(&credentials, &[&username]).unwrap();
            let id: i64 = row.get(0);
            let failures: i32 = conn
                .client
                .query_one(&count, &[&username, &now])
                .unwrap()
                .get(0);
            assert!(failures > 0);
            let mut tx = conn.client.transaction().unwrap();
            tx.query_one(&open, &[&&token[..], &id, &now]).unwrap();
            tx.execute(&cap, &[&id]).unwrap();
            tx.commit().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the load

struct Bench {
    deadpool: Pool,
    r2d2: r2d2::Pool<CachingManager>,
    threads: ThreadPool,
    tokens: Vec<[u8; 32]>,
    clock: AtomicI64,
}

impl Bench {
    async fn request(&self, design: Design, input: Input) {
        match design {
            Design::Async => async_call(&self.deadpool, input).await,
            Design::Sync => {
                let pool = self.r2d2.clone();
                self.threads
                    .run(move || sync_call(&pool, input))
                    .await
                    .expect("the thread pool's queue");
            }
        }
    }

    fn input(&self, workload: Workload, rng: &mut u64) -> Input {
        match workload {
            Workload::Lookup => Input::Lookup(self.tokens[(next(rng) % SESSIONS as u64) as usize]),
            Workload::SignIn => {
                // The clock ticks once per request, so it makes each new token unique.
                let now = self.clock.fetch_add(1, Ordering::Relaxed);
                let mut token = [0u8; 32];
                token[..8].copy_from_slice(&now.to_le_bytes());
                for chunk in token[8..].chunks_mut(8) {
                    chunk.copy_from_slice(&next(rng).to_le_bytes());
                }
                Input::SignIn {
                    user: USERS + 1 + (next(rng) % USERS as u64) as i64,
                    token,
                    now,
                }
            }
        }
    }
}

/// splitmix64: cheap, and each task has its own stream.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One measurement: which design, which workload, how many requests at once.
#[derive(Clone, Copy)]
struct Cell {
    design: Design,
    workload: Workload,
    concurrency: usize,
}

/// Runs `concurrency` closed-loop request tasks for `length`; returns each request's latency
/// in microseconds and the wall time until the last one finished.
fn drive(
    rt: &tokio::runtime::Runtime,
    bench: &Arc<Bench>,
    cell: Cell,
    length: Duration,
    seed: u64,
) -> (Vec<u32>, Duration) {
    let Cell {
        design,
        workload,
        concurrency,
    } = cell;
    rt.block_on(async {
        let start = Instant::now();
        let deadline = start + length;
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                let bench = Arc::clone(bench);
                tokio::spawn(async move {
                    let mut rng = seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
                    let mut latencies = Vec::with_capacity(16 * 1024);
                    while Instant::now() < deadline {
                        let input = bench.input(workload, &mut rng);
                        let t = Instant::now();
                        bench.request(design, input).await;
                        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("a request task panicked"));
        }
        (all, start.elapsed())
    })
}

/// User plus system CPU time of the whole process, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[derive(Clone, Copy, Default)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_per_k: f64,
}

/// What the tables show of a sample, in their column order.
const METRICS: [fn(&Sample) -> f64; 4] = [|s| s.rps, |s| s.p50_ms, |s| s.p99_ms, |s| s.cpu_per_k];

fn percentile(sorted: &[u32], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn measure(
    rt: &tokio::runtime::Runtime,
    bench: &Arc<Bench>,
    cell: Cell,
    length: Duration,
    seed: u64,
) -> Sample {
    drive(rt, bench, cell, WARM_UP, seed);
    let cpu = cpu_seconds();
    let (mut latencies, wall) = drive(rt, bench, cell, length, !seed);
    let cpu = cpu_seconds() - cpu;
    latencies.sort_unstable();
    let n = latencies.len() as f64;
    Sample {
        rps: n / wall.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        cpu_per_k: cpu / n * 1000.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// The database

/// The bench's own database, dropped when the bench ends (also on a panic).
struct Database {
    admin: String,
    name: String,
}

impl Database {
    fn create(admin: &str) -> Self {
        let name = format!("gatehouse_bench_drivers_{}", std::process::id());
        let mut client = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("GATEHOUSE_BENCH_PG: cannot connect: {e}"));
        // Two calls: DROP DATABASE may not share a (implicit) transaction with anything.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop a leftover bench database");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the bench database");
        Self {
            admin: admin.to_owned(),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn main() {
    let admin = std::env::var("GATEHOUSE_BENCH_PG").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_BENCH_PG is not set: give a PostgreSQL server URL where the bench may \
             create a database, e.g. GATEHOUSE_BENCH_PG=postgres://postgres@127.0.0.1:55432/postgres"
        )
    });
    let length = Duration::from_secs_f64(
        std::env::var("GATEHOUSE_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5.0),
    );
    let db = Database::create(&admin);

    let mut async_config =
        tokio_postgres::Config::from_str(&admin).expect("GATEHOUSE_BENCH_PG: not a URL");
    async_config.dbname(&db.name);
    let mut sync_config = postgres::Config::from_str(&admin).expect("GATEHOUSE_BENCH_PG");
    sync_config.dbname(&db.name);

    let mut setup = sync_config
        .connect(postgres::NoTls)
        .expect("connect to the bench database");
    setup
        .batch_execute(gatehouse::store::postgres::SCHEMA)
        .expect("the Gatehouse schema");
    setup.batch_execute(DATA).expect("the bench rows");
    let version: String = setup.query_one("SHOW server_version", &[]).unwrap().get(0);
    drop(setup);

    // The store's own runtime for the connections' I/O, and the server's 2 request workers.
    let connections = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pg-io")
        .enable_all()
        .build()
        .unwrap();
    let requests = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("requests")
        .enable_all()
        .build()
        .unwrap();

    let manager = Manager::from_connect(
        async_config,
        Spawning(connections.handle().clone()),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let deadpool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .unwrap();
    let r2d2 = r2d2::Pool::builder()
        .max_size(POOL_SIZE as u32)
        .test_on_check_out(false)
        .build(CachingManager(
            r2d2_postgres::PostgresConnectionManager::new(sync_config, postgres::NoTls),
        ))
        .expect("the r2d2 pool");
    // Both pools full before the first cell (r2d2 opens its connections when built).
    requests.block_on(async {
        let held: Vec<_> = futures_util::future::join_all((0..POOL_SIZE).map(|_| deadpool.get()))
            .await
            .into_iter()
            .map(|c| c.expect("deadpool connection"))
            .collect();
        drop(held);
    });

    let tokens = (1..=SESSIONS)
        .map(|i| Sha256::digest(format!("session{i}").as_bytes()).into())
        .collect();
    let bench = Arc::new(Bench {
        deadpool,
        r2d2,
        threads: ThreadPool::new("pg-sync", POOL_SIZE, 4096),
        tokens,
        clock: AtomicI64::new(1_000_000),
    });

    println!(
        "PostgreSQL {version}; pool {POOL_SIZE}; {ROUNDS} rounds of {:.1} s per cell (+{} ms \
         warm-up); {} cores",
        length.as_secs_f64(),
        WARM_UP.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let cells: Vec<(Workload, usize)> = [Workload::Lookup, Workload::SignIn]
        .into_iter()
        .flat_map(|w| CONCURRENCY.map(|c| (w, c)))
        .collect();
    // results[cell][design] = one sample per round
    let mut results: Vec<[Vec<Sample>; 2]> = vec![[Vec::new(), Vec::new()]; cells.len()];
    for round in 0..ROUNDS {
        for (i, &(workload, concurrency)) in cells.iter().enumerate() {
            let order = if round % 2 == 0 {
                [Design::Async, Design::Sync]
            } else {
                [Design::Sync, Design::Async]
            };
            for design in order {
                let seed = (round * 1000 + i) as u64;
                let cell = Cell {
                    design,
                    workload,
                    concurrency,
                };
                let s = measure(&requests, &bench, cell, length, seed);
                eprintln!(
                    "round {} {:16} {:>2} {:5?}: {:7.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms  \
                     {:.3} CPU s/1000",
                    round + 1,
                    workload.name(),
                    concurrency,
                    design,
                    s.rps,
                    s.p50_ms,
                    s.p99_ms,
                    s.cpu_per_k
                );
                results[i][design as usize].push(s);
            }
        }
    }

    println!();
    println!("| workload | concurrent | design | req/s | p50 ms | p99 ms | CPU s / 1000 req |");
    println!("|---|---|---|---|---|---|---|");
    for (i, &(workload, concurrency)) in cells.iter().enumerate() {
        for design in [Design::Async, Design::Sync] {
            let runs = &results[i][design as usize];
            let [rps, p50, p99, cpu] = METRICS.map(|f| median(runs.iter().map(f).collect()));
            let label = match design {
                Design::Async => "async (tokio-postgres + deadpool)",
                Design::Sync => "sync (postgres + r2d2 on 16 threads)",
            };
            println!(
                "| {} | {concurrency} | {label} | {rps:.0} | {p50:.2} | {p99:.2} | {cpu:.3} |",
                workload.name()
            );
        }
    }
    println!();
    println!("Ratios sync / async (median of the per-round ratios):");
    println!();
    println!("| workload | concurrent | req/s | p50 | p99 | CPU / request |");
    println!("|---|---|---|---|---|---|");
    for (i, &(workload, concurrency)) in cells.iter().enumerate() {
        let [a, s] = &results[i];
        let [rps, p50, p99, cpu] =
            METRICS.map(|f| median(a.iter().zip(s).map(|(a, s)| f(s) / f(a)).collect()));
        println!(
            "| {} | {concurrency} | {rps:.2} | {p50:.2} | {p99:.2} | {cpu:.2} |",
            workload.name()
        );
    }
    drop(bench);
    drop(db);
}
