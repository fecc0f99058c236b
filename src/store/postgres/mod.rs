//! The PostgreSQL backend of [`crate::store::Store`] (docs/behaviour.md §12): all of its SQL,
//! its migrations (`schema.sql`), its connection pool and the per-instance session cache that
//! `LISTEN/NOTIFY` keeps true across instances.
//!
//! `tokio-postgres` with a `deadpool-postgres` pool, not the blocking `postgres` crate on a
//! thread pool: every call here waits on the network, and an async client waits without
//! holding a thread (docs/design.md, "PostgreSQL backend", has the measurement). The shared
//! pool's connections run their I/O on the store's own small runtime, so the store can be
//! opened from admin commands and tests alike; each server worker also owns a share of the
//! pool driven by its own runtime (`workers.rs`), which saves two thread wake-ups per
//! statement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

use crate::store::{Result, StoreError};

mod admin;
mod audit;
pub mod cache;
pub mod check;
mod connect;
pub use connect::{describe, has_password, parse as parse_url, redact};
pub mod copy;
mod groups;
mod keys;
pub mod limits;
mod outbox;
mod passkeys;
mod profile;
mod sessions;
mod tokens;
mod two_step;
mod users;
mod workers;

/// The schema, compiled in: `-- @version N` sections, as for SQLite.
pub const SCHEMA: &str = include_str!("schema.sql");

/// An arbitrary constant naming Gatehouse's migration lock (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

/// Whether `database` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Connection settings from the command line (`--db-pool-size`, `--db-connect-timeout`,
/// `--db-timeout`, and `--workers` for the split).
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Connections in this instance's pool.
    pub pool_size: usize,
    /// Server workers that will each own a share of the pool ([`PgStore::adopt_worker`]);
    /// 0 (admin commands, tests) keeps the whole pool shared.
    pub workers: usize,
    /// How long to wait for a new connection (TCP, TLS, authentication).
    pub connect_timeout: Duration,
    /// How long a call waits for a free connection, and how long one statement may run.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            workers: 0,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            // The server's own words ("duplicate key value violates …"), not just "db error".
            let message = format!("{} ({})", db.message(), db.code().code());
            return from_sqlstate(db.code(), message);
        }
        // No SQLSTATE: the connection failed or closed.
        StoreError::Unavailable(e.to_string())
    }
}

fn from_sqlstate(code: &SqlState, message: String) -> StoreError {
    let class = &code.code()[..2];
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
    {
        StoreError::Busy
    } else if class == "08" // connection exception
        || class == "57" // operator intervention: shutdown, cannot connect now
        || class == "53" // insufficient resources: too many connections, disk full
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        StoreError::Unavailable(message)
    } else {
        StoreError::Backend(message)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct PgStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// Runs the connections' I/O; shut down in the background when the store goes.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    pub(super) pool: Pool,
    /// Server workers' own pools ([`PgStore::adopt_worker`]).
    workers: workers::WorkerPools,
    /// Connections each worker owns, when the pool is split (`workers::split`).
    worker_share: Option<usize>,
    options: PgOptions,
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: connect::Tls,
    pub(super) cache: cache::SessionCache,
    /// Session "last seen" times waiting for [`PgStore::flush_touches`]: session id → time.
    pub(super) touches: Mutex<HashMap<i64, i64>>,
    /// What to show for the database in messages: the URL without its password.
    pub(super) display: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

pub(super) type Client = deadpool_postgres::Object;

/// A pool of at most `size` connections whose I/O tasks run on `handle`.
fn new_pool(
    config: &tokio_postgres::Config,
    tls: &connect::Tls,
    handle: &tokio::runtime::Handle,
    size: usize,
    options: &PgOptions,
) -> Pool {
    let manager = Manager::from_connect(
        config.clone(),
        connect::Spawning {
            tls: tls.clone(),
            handle: handle.clone(),
        },
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        // The connection used last is handed out first: under a light load the same few
        // server processes do the work, warm in the CPU's caches, instead of all of them
        // in turn (deadpool's default, FIFO).
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(options.timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.timeout))
        .build()
        .expect("a pool with a runtime for its timeouts")
}

/// Threads driving the connections' I/O: one per four cores, from one to four. The work is
/// encoding and decoding messages, light next to what the database does for them; on a small
/// machine a second thread mostly adds wake-ups (measured on 2 cores: 63 → 52 context switches
/// per sign-in, docs/performance.md), while a large one gets a thread per few busy cores.
fn io_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).clamp(1, 4))
}

impl PgStore {
    /// Connects to the database at `url`, creates or upgrades its schema under an advisory
    /// lock, and starts the session cache's listener. Blocks the calling thread (any thread,
    /// in a runtime or not) until the schema is ready.
    pub fn open(url: &str, options: &PgOptions) -> Result<Self> {
        let (config, tls, display) = connect::parse(url, options)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(io_threads())
            .thread_name("gatehouse-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("starting the database runtime: {e}")))?;
        let split = workers::split(options.pool_size, options.workers);
        let shared = split.map_or(options.pool_size, |(_, shared)| shared);
        let pool = new_pool(&config, &tls, runtime.handle(), shared, options);
        let store = PgStore {
            inner: Arc::new(Inner {
                runtime: Mutex::new(None),
                pool,
                workers: workers::WorkerPools::default(),
                worker_share: split.map(|(each, _)| each),
                options: options.clone(),
                config,
                tls,
                cache: cache::SessionCache::new(),
                touches: Mutex::new(HashMap::new()),
                display,
            }),
        };
        let handle = runtime.handle().clone();
        *store
            .inner
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(runtime);
        // On a thread of its own: `block_on` may not run on a thread that is already inside a
        // runtime (a test, an embedding app).
        let migrating = store.clone();
        let h = handle.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || h.block_on(migrating.migrate()))
                .join()
                .unwrap_or_else(|_| Err(StoreError::Backend("the migration panicked".into())))
        })?;
        handle.spawn(cache::listen(store.clone()));
        Ok(store)
    }

    /// Where the store is, for messages: the URL without its password.
    pub fn display(&self) -> &str {
        &self.inner.display
    }

    /// A pooled connection: the calling worker's own if it has a pool, else a shared one. A
    /// pool that cannot connect is [`StoreError::Unavailable`] (503).
    pub(super) async fn client(&self) -> Result<Client> {
        match self.inner.workers.current() {
            Some(own) => Ok(own.get().await?),
            None => Ok(self.inner.pool.get().await?),
        }
    }

    /// Gives the calling server worker (a thread running a single-threaded runtime) its share
    /// of the pool, its connections' I/O on that runtime (`workers.rs`). Nothing happens
    /// on any other thread, when the pool is too small to split, or when every worker's share
    /// is taken.
    pub fn adopt_worker(&self) {
        let inner = &self.inner;
        let Some(each) = inner.worker_share else {
            return;
        };
        inner.workers.adopt(inner.options.workers, |handle| {
            new_pool(&inner.config, &inner.tls, &handle, each, &inner.options)
        });
    }

    /// Applies the schema sections newer than the database in one transaction, holding an
    /// advisory lock so instances starting together run them once (the second waits and then
    /// finds them done).
    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
             INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
        )
        .await?;
        let current: i64 = tx
            .query_one("SELECT version FROM schema_version", &[])
            .await?
            .get(0);
        let all = crate::store::sqlite::sections(SCHEMA);
        let latest = all.last().map_or(0, |m| m.0);
        if current > latest {
            return Err(StoreError::TooNew(current));
        }
        let pending: Vec<_> = all.into_iter().filter(|(v, _)| *v > current).collect();
        for (version, sql) in &pending {
            tx.batch_execute(sql).await?;
            tx.execute("UPDATE schema_version SET version = $1", &[version])
                .await?;
        }
        tx.commit().await?;
        if current == 0 {
            tracing::info!("created schema v{latest}");
        } else {
            for (version, _) in pending {
                tracing::info!(version, "database schema upgraded");
            }
        }
        Ok(())
    }

    /// See [`crate::store::Store::claim_key`].
    pub async fn claim_key(&self, fingerprint: &str) -> Result<String> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO meta (name, value) VALUES ('key_fingerprint', $1)
                 ON CONFLICT (name) DO NOTHING",
                &[&fingerprint],
            )
            .await?;
        Ok(client
            .query_one("SELECT value FROM meta WHERE name = 'key_fingerprint'", &[])
            .await?
            .get(0))
    }

    /// Whether the database answers a trivial query.
    pub async fn healthy(&self) -> bool {
        match self.client().await {
            Ok(c) => c
                .query_one("SELECT 1", &[])
                .await
                .is_ok_and(|r| r.get::<_, i32>(0) == 1),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod contract_a;
#[cfg(test)]
mod contract_b;
