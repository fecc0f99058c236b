//! Benchmark: the per-request session lookup read directly on the async worker versus handed
//! to the blocking pool (the SQLite backend's own pool). Decides where the SQLite backend runs
//! the read behind `Store::session`; the direct variant goes through the `Store` interface,
//! as `Visitor::of` does.
//!
//! Run: `cargo bench --bench session_lookup` (or `scripts/bench.sh`). Prints the median of
//! several rounds for each variant and their ratio, measured alternately in one run.

use std::time::{Duration, Instant};

use gatehouse::domain::Username;
use gatehouse::security::session::SessionId;
use gatehouse::store::sqlite::SqliteStore;
use gatehouse::store::{NewSession, Store};

const USERS: usize = 1_000;
const LOOKUPS: usize = 20_000;
const ROUNDS: usize = 7;
const CONCURRENCY: usize = 64;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteStore::open(&dir.path().join("bench.database")).unwrap();
    let hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";
    let mut tokens = Vec::new();
    for i in 0..USERS {
        let user = backend
            .create_user(
                &Username::parse(&format!("user{i}")).unwrap(),
                None,
                None,
                hash,
                1,
            )
            .unwrap()
            .unwrap();
        let id = SessionId::generate();
        backend
            .create_session(&NewSession {
                token_hash: id.hash(),
                user_id: user.id,
                password_changed_ms: 1,
                now_ms: 1,
                expires_ms: i64::MAX,
                user_agent: Some("bench".into()),
                ip: Some("127.0.0.1".into()),
                replaces: None,
            })
            .unwrap()
            .unwrap();
        tokens.push(id.hash());
    }

    let store = Store::Sqlite(backend.clone());
    let system = actix_web::rt::System::new();
    let (mut direct, mut blocked) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.push(system.block_on(run(&store, &backend, &tokens, false)));
        blocked.push(system.block_on(run(&store, &backend, &tokens, true)));
    }
    let (d, b) = (median(direct), median(blocked));
    let per = |t: Duration| t.as_secs_f64() * 1e6 / LOOKUPS as f64;
    println!(
        "session lookup, {LOOKUPS} lookups, {CONCURRENCY} concurrent tasks, median of {ROUNDS} rounds"
    );
    println!(
        "  on the worker      : {:>8.2} ms total, {:>6.2} µs/lookup",
        d.as_secs_f64() * 1e3,
        per(d)
    );
    println!(
        "  via web::block     : {:>8.2} ms total, {:>6.2} µs/lookup",
        b.as_secs_f64() * 1e3,
        per(b)
    );
    println!(
        "  ratio block/worker : {:>8.2}",
        b.as_secs_f64() / d.as_secs_f64()
    );
}

/// `LOOKUPS` lookups spread over `CONCURRENCY` tasks on one worker (one actix thread).
async fn run(
    store: &Store,
    backend: &SqliteStore,
    tokens: &[[u8; 32]],
    via_block: bool,
) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(CONCURRENCY);
    for t in 0..CONCURRENCY {
        let (store, backend) = (store.clone(), backend.clone());
        let mine: Vec<[u8; 32]> = tokens
            .iter()
            .cycle()
            .skip(t)
            .step_by(CONCURRENCY)
            .take(LOOKUPS / CONCURRENCY)
            .copied()
            .collect();
        tasks.push(actix_web::rt::spawn(async move {
            for token in mine {
                let found = if via_block {
                    backend.blocking(move |s| s.session(&token)).await.unwrap()
                } else {
                    store.session(&token).await.unwrap()
                };
                assert!(found.is_some());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}
