//! The SQLite backend of [`crate::store::Store`]: all of its SQL (docs/behaviour.md §8), its
//! migrations (the sections of `users.database.sql`), its own thread pool and its fast paths.
//!
//! SQLite in WAL mode: one writer connection behind a mutex (SQLite allows one writer at a time
//! anyway, and a single connection avoids `SQLITE_BUSY` between our own writers) and a small
//! set of reader connections for point reads. The queries are synchronous; the `*_async`
//! wrappers in [`calls`] decide where each runs: writes on [`SqliteStore::blocking`] so they
//! never stall an async worker, the per-page point reads (the session lookup, credentials)
//! inline on the caller, as measured in docs/performance.md.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::domain::{Email, FullName, Username};
use crate::store::{Credentials, Result, SessionRecord, StoreError, Taken, User};

mod admin;
mod audit;
mod calls;
mod files;
mod groups;
mod keys;
pub mod outbox;
mod passkeys;
mod profile;
pub mod seed;
mod sessions;
mod tokens;
mod two_step;

pub use admin::check;

/// The schema, compiled in so the server runs from any directory.
pub const SCHEMA: &str = include_str!("../../../users.database.sql");
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of the file read-only connections map (SQLite's default build allows up to 2 GiB).
const READER_MMAP_BYTES: i64 = 1 << 30;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Reader>>,
    /// Threads for [`SqliteStore::blocking`], started on first use (admin commands never need them).
    pool: std::sync::OnceLock<crate::pool::ThreadPool>,
    /// Session "last seen" times waiting for [`SqliteStore::flush_touches`]: session id → time.
    touches: Mutex<std::collections::HashMap<i64, i64>>,
}

// Every sign-in reads one of these: constant text, so the statement cache needs no formatting.
const CREDENTIALS_BY_NAME: &str =
    "SELECT id, password_hash, active, password_changed_at, unlocked_at, email,
            email_verified_at IS NOT NULL,
            EXISTS (SELECT 1 FROM totp WHERE user_id = users.id AND enabled_at IS NOT NULL)
     FROM users WHERE username = ?1";
const CREDENTIALS_BY_ID: &str =
    "SELECT id, password_hash, active, password_changed_at, unlocked_at,
            email, email_verified_at IS NOT NULL,
            EXISTS (SELECT 1 FROM totp WHERE user_id = users.id AND enabled_at IS NOT NULL)
     FROM users WHERE id = ?1";

/// A read-only connection with its cache of session lookups, valid for one `data_version`.
struct Reader {
    conn: Connection,
    data_version: Option<i64>,
    sessions: std::collections::HashMap<[u8; 32], Option<SessionRecord>>,
}

/// Cached session lookups per reader connection before the cache starts over (bounded memory
/// whatever cookies clients send).
const SESSION_CACHE: usize = 4096;

/// Threads running store calls for the server: writes serialize on the writer connection
/// anyway, so a few threads suffice; the queue absorbs bursts.
const POOL_THREADS: usize = 4;
const POOL_QUEUE: usize = 4096;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Switches the file to WAL (a no-op once it is) and returns the journal mode. On a fresh file
/// another process may be switching at the same moment: SQLite then answers `SQLITE_BUSY` at
/// once instead of calling the busy handler (the switch upgrades a lock the connection already
/// holds, so waiting there could deadlock), hence the retries, within the busy timeout.
fn wal_mode(conn: &Connection) -> Result<String> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            done => return Ok(done?),
        }
    }
}

/// The schema's sections: (version, SQL that brings the file to it).
fn migrations() -> Vec<(i64, &'static str)> {
    sections(SCHEMA)
}

/// A schema file's `-- @version N` sections, in file order (each backend has its own file).
pub(crate) fn sections(schema: &'static str) -> Vec<(i64, &'static str)> {
    let mut out = Vec::new();
    let mut rest = schema;
    while let Some(at) = rest.find("\n-- @version ") {
        rest = &rest[at + 1..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let version: i64 = rest["-- @version ".len()..line_end]
            .trim()
            .parse()
            .expect("schema version marker");
        let body_end = rest[line_end..]
            .find("\n-- @version ")
            .map_or(rest.len(), |e| e + line_end);
        out.push((version, &rest[..body_end]));
        rest = &rest[body_end..];
    }
    out
}

impl SqliteStore {
    /// Opens (creating when missing) and upgrades the database.
    pub fn open(path: &Path) -> Result<Self> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let io_err = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        // Ours, not SQLite's, so it is private whatever the umask (and so its -wal and -shm).
        files::create_private_if_missing(path).map_err(io_err)?;
        files::warn_if_shared(path);
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        let mode = wal_mode(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite did not switch to WAL mode");
        }
        Self::migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                pool: std::sync::OnceLock::new(),
                touches: Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    /// Applies the schema sections newer than the file, all in one transaction. Processes may
    /// start together on a fresh file (two admin commands, a server and a command): each takes
    /// the write lock first (`BEGIN IMMEDIATE`) and reads the version again under it, so the
    /// second finds the work done instead of creating the tables twice.
    fn migrate(conn: &mut Connection) -> Result<()> {
        let all = migrations();
        let latest = all.last().map_or(0, |m| m.0);
        let version = |c: &Connection| -> Result<i64> {
            let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if v > latest {
                return Err(StoreError::TooNew(v));
            }
            Ok(v)
        };
        // A current file (every start but the first after an upgrade) takes no write lock.
        if version(conn)? == latest {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        let pending: Vec<_> = all.into_iter().filter(|(v, _)| *v > current).collect();
        for (version, sql) in &pending {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
        }
        tx.commit()?;
        if current == 0 {
            tracing::info!("created schema v{latest}");
        } else {
            for (version, _) in pending {
                tracing::info!(version, "database schema upgraded");
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the store's own bounded thread pool, off the async workers. A full queue is
    /// [`StoreError::Busy`] (503).
    pub async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteStore) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        let pool = self
            .inner
            .pool
            .get_or_init(|| crate::pool::ThreadPool::new("store", POOL_THREADS, POOL_QUEUE));
        pool.run(move || f(&store))
            .await
            .map_err(|_| StoreError::Busy)?
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read_with(|r| f(&r.conn))
    }

    fn read_with<T>(&self, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&c)?;
                // Point reads through the OS page cache without a syscall per page: with a
                // million sessions most lookups miss SQLite's own 2 MB cache (see
                // docs/performance.md). Read-only connections only, so a write never goes
                // through the mapping.
                c.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
                Reader {
                    conn: c,
                    data_version: None,
                    sessions: std::collections::HashMap::new(),
                }
            }
        };
        let mut reader = conn;
        let result = f(&mut reader);
        let mut readers = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < 16 {
            readers.push(reader);
        }
        result
    }

    /// See [`crate::store::Store::claim_key`].
    pub fn claim_key(&self, fingerprint: &str) -> Result<String> {
        self.write(|c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('key_fingerprint', ?1)",
                [fingerprint],
            )?;
            Ok(c.query_row(
                "SELECT value FROM meta WHERE name = 'key_fingerprint'",
                [],
                |r| r.get(0),
            )?)
        })
    }

    pub fn healthy(&self) -> bool {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .is_ok_and(|v| v == 1)
    }

    /// Which of username / email is already taken, username first.
    pub fn taken(&self, username: &Username, email: Option<&Email>) -> Result<Option<Taken>> {
        self.read(|c| taken_in(c, username, email))
    }

    /// Creates an active user, or names the unique field that is taken. The check and the
    /// insert share one write transaction that holds SQLite's write lock from its start
    /// (`BEGIN IMMEDIATE`), so no other connection or process can add the name in between:
    /// the outcome is decided by a query, never by reading a constraint's error text.
    pub fn create_user(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<User, Taken>> {
        self.create_user_verifying(username, email, full_name, password_hash, now_ms, None)
    }

    /// [`SqliteStore::create_user`], and in the same transaction the verification link of the
    /// email and its mail.
    pub fn create_user_verifying(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
        verify: Option<&crate::store::tokens::VerifyLink>,
    ) -> Result<std::result::Result<User, Taken>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(taken) = taken_in(&tx, username, email)? {
                return Ok(Err(taken));
            }
            tx.execute(
                "INSERT INTO users (username, email, full_name, password_hash, active,
                                    created_at, updated_at, password_changed_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?5)",
                params![
                    username.as_str(),
                    email.map(Email::as_str),
                    full_name.map(FullName::as_str),
                    password_hash,
                    now_ms
                ],
            )?;
            let id = tx.last_insert_rowid();
            if let (Some(v), Some(email)) = (verify, email) {
                tokens::insert_verify_link(&tx, id, email.as_str(), v, now_ms)?;
            }
            tx.commit()?;
            Ok(Ok(User {
                id,
                username: username.as_str().to_owned(),
                email: email.map(|e| e.as_str().to_owned()),
                full_name: full_name.map(|f| f.as_str().to_owned()),
                created_ms: now_ms,
            }))
        })
    }

    pub fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        self.credentials_where(CREDENTIALS_BY_NAME, username)
    }

    pub fn credentials_by_id(&self, user_id: i64) -> Result<Option<Credentials>> {
        self.credentials_where(CREDENTIALS_BY_ID, user_id)
    }

    fn credentials_where(
        &self,
        sql: &'static str,
        key: impl rusqlite::ToSql,
    ) -> Result<Option<Credentials>> {
        self.read(|c| {
            Ok(c.prepare_cached(sql)?
                .query_row([key], |r| {
                    Ok(Credentials {
                        user_id: r.get(0)?,
                        password_hash: r.get(1)?,
                        active: r.get(2)?,
                        password_changed_ms: r.get(3)?,
                        unlocked_ms: r.get(4)?,
                        email: r.get(5)?,
                        email_verified: r.get(6)?,
                        two_step: r.get(7)?,
                    })
                })
                .optional()?)
        })
    }

    /// Replaces the hash only if it is still `old` (a rehash must never bring back a password
    /// that was changed meanwhile). Returns whether it did.
    pub fn rehash(&self, user_id: i64, old: &str, new: &str, now_ms: i64) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE id = ?1 AND password_hash = ?2",
                params![user_id, old, new, now_ms],
            )? == 1)
        })
    }
}

/// Which of username / email has a user on `c`, username first.
fn taken_in(c: &Connection, username: &Username, email: Option<&Email>) -> Result<Option<Taken>> {
    let exists = |sql: &str, value: &str| -> Result<bool> {
        Ok(c.prepare_cached(sql)?.query_row([value], |r| r.get(0))?)
    };
    if exists(
        "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)
             OR EXISTS(SELECT 1 FROM retired_usernames WHERE username = ?1)",
        username.as_str(),
    )? {
        return Ok(Some(Taken::Username));
    }
    match email {
        Some(email)
            if exists(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1)",
                email.as_str(),
            )? =>
        {
            Ok(Some(Taken::Email))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests;
