//! The SQLite backend of [`crate::store::Store`]: all of its SQL (SPEC §8 in docs), its
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
use crate::store::{
    Credentials, NewSession, Result, SessionRecord, SessionSummary, StoreError, Taken, User,
};

mod admin;
mod audit;
mod calls;
mod files;
pub mod seed;

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
    "SELECT id, password_hash, active, password_changed_at, unlocked_at
     FROM users WHERE username = ?1";
const CREDENTIALS_BY_ID: &str = "SELECT id, password_hash, active, password_changed_at, unlocked_at
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
    let mut out = Vec::new();
    let mut rest = SCHEMA;
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

    /// Notes that session `id` was used at `now_ms`; [`SqliteStore::flush_touches`] writes it later,
    /// so a page view never waits for (or queues) a write.
    pub fn touch_later(&self, id: i64, now_ms: i64) {
        let mut touches = self.inner.touches.lock().unwrap_or_else(|e| e.into_inner());
        let t = touches.entry(id).or_insert(now_ms);
        *t = (*t).max(now_ms);
    }

    /// Writes the pending "last seen" times in one transaction. Returns how many.
    pub fn flush_touches(&self) -> Result<usize> {
        let pending =
            std::mem::take(&mut *self.inner.touches.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return Ok(0);
        }
        let written = self.write(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
                )?;
                for (id, at) in &pending {
                    stmt.execute(params![id, at])?;
                }
            }
            tx.commit()?;
            Ok(pending.len())
        });
        if written.is_err() {
            // Keep them for the next flush (the database was busy, say).
            for (id, at) in pending {
                self.touch_later(id, at);
            }
        }
        written
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

    /// Changes the password if it has not changed since `old_changed_ms` (when the current one
    /// was verified), ends every session of the user and opens `session` in its place, all in
    /// one transaction. `session.password_changed_ms` becomes the new change time. Returns the
    /// new session's id, or `None` when the password was changed meanwhile.
    pub fn change_password(
        &self,
        old_changed_ms: i64,
        new_hash: &str,
        session: &NewSession,
    ) -> Result<Option<i64>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE users SET password_hash = ?3, updated_at = ?4, password_changed_at = ?4
                 WHERE id = ?1 AND password_changed_at = ?2 AND active = 1",
                params![
                    session.user_id,
                    old_changed_ms,
                    new_hash,
                    session.password_changed_ms
                ],
            )?;
            if changed != 1 {
                return Ok(None);
            }
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [session.user_id])?;
            let id = insert_session(&tx, session)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// Opens a session for a user whose password has not changed since it was verified and who
    /// is active; drops the replaced session and the user's oldest beyond the per-user cap.
    pub fn create_session(&self, session: &NewSession) -> Result<Option<i64>> {
        self.write(|c| {
            let tx = c.transaction()?;
            if let Some(old) = &session.replaces {
                tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [&old[..]])?;
            }
            let id = insert_session(&tx, session)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// The session with this token hash, joined with its user. Answered from the reader's
    /// cache while the database is unchanged since the cached lookup (`PRAGMA data_version`
    /// moves on every commit by any other connection or process, so a revoke, a disable or an
    /// admin command is seen by the very next lookup).
    pub fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        self.read_with(|r| {
            let version: i64 = r
                .conn
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |row| row.get(0))?;
            if r.data_version != Some(version) {
                r.sessions.clear();
                r.data_version = Some(version);
            }
            if let Some(hit) = r.sessions.get(token_hash) {
                return Ok(hit.clone());
            }
            let found = Self::session_row(&r.conn, token_hash)?;
            if r.sessions.len() >= SESSION_CACHE {
                r.sessions.clear();
            }
            r.sessions.insert(*token_hash, found.clone());
            Ok(found)
        })
    }

    fn session_row(c: &Connection, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        Ok(c.prepare_cached(
            "SELECT s.id, s.created_at, s.last_seen_at, s.expires_at,
                        u.id, u.username, u.email, u.full_name, u.created_at, u.active,
                        u.password_changed_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1",
        )?
        .query_row([&token_hash[..]], |r| {
            Ok(SessionRecord {
                id: r.get(0)?,
                user: User {
                    id: r.get(4)?,
                    username: r.get(5)?,
                    email: r.get(6)?,
                    full_name: r.get(7)?,
                    created_ms: r.get(8)?,
                },
                state: crate::security::session::SessionState {
                    created_ms: r.get(1)?,
                    last_seen_ms: r.get(2)?,
                    expires_ms: r.get(3)?,
                    user_active: r.get(9)?,
                    password_changed_ms: r.get(10)?,
                },
            })
        })
        .optional()?)
    }

    pub fn delete_session_by_hash(&self, token_hash: &[u8; 32]) -> Result<()> {
        self.write(|c| {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [&token_hash[..]],
            )?;
            Ok(())
        })
    }

    /// Deletes one session, only if it belongs to `user_id`. Returns whether it did.
    pub fn delete_user_session(&self, user_id: i64, session_id: i64) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2",
                params![session_id, user_id],
            )? == 1)
        })
    }

    pub fn delete_other_sessions(&self, user_id: i64, keep_id: i64) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2",
                params![user_id, keep_id],
            )?)
        })
    }

    /// The user's sessions, newest first, live ones only.
    pub fn sessions_of(
        &self,
        user_id: i64,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionSummary>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, created_at, last_seen_at, user_agent, ip FROM sessions
                 WHERE user_id = ?1 AND expires_at > ?2 AND last_seen_at > ?2 - ?3
                 ORDER BY created_at DESC, id DESC",
            )?;
            let rows = stmt.query_map(params![user_id, now_ms, idle_ms], |r| {
                Ok(SessionSummary {
                    id: r.get(0)?,
                    created_ms: r.get(1)?,
                    last_seen_ms: r.get(2)?,
                    user_agent: r.get(3)?,
                    ip: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Deletes sessions past their absolute or idle limit. Returns how many.
    pub fn purge_expired_sessions(&self, now_ms: i64, idle_ms: i64) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?1 - ?2",
                params![now_ms, idle_ms],
            )?)
        })
    }

    /// Sessions whose absolute lifetime has not ended (a count over `sessions_by_expiry`);
    /// sessions past their idle limit count until the next purge, at most a minute later.
    pub fn count_live_sessions(&self, now_ms: i64) -> Result<i64> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT count(*) FROM sessions WHERE expires_at > ?1")?
                    .query_row([now_ms], |r| r.get(0))?,
            )
        })
    }
}

/// Which of username / email has a user on `c`, username first.
fn taken_in(c: &Connection, username: &Username, email: Option<&Email>) -> Result<Option<Taken>> {
    let exists = |sql: &str, value: &str| -> Result<bool> {
        Ok(c.prepare_cached(sql)?.query_row([value], |r| r.get(0))?)
    };
    if exists(
        "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)",
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

fn insert_session(tx: &rusqlite::Transaction<'_>, s: &NewSession) -> Result<Option<i64>> {
    let inserted = tx.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, user_agent, ip)
         SELECT ?1, id, ?3, ?3, ?4, ?5, ?6 FROM users
         WHERE id = ?2 AND password_changed_at = ?7 AND active = 1",
        params![&s.token_hash[..], s.user_id, s.now_ms, s.expires_ms, s.user_agent, s.ip, s.password_changed_ms],
    )?;
    if inserted != 1 {
        return Ok(None);
    }
    let id = tx.last_insert_rowid();
    // Keep the newest sessions only.
    tx.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id NOT IN
           (SELECT id FROM sessions WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2)",
        params![
            s.user_id,
            crate::security::session::SessionPolicy::MAX_PER_USER as i64
        ],
    )?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("users.database")).unwrap();
        (dir, s)
    }

    const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";
    const HASH2: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$b3RoZXJvdGhlcm90aGVyMQ";

    fn user(s: &SqliteStore, name: &str) -> User {
        s.create_user(&Username::parse(name).unwrap(), None, None, HASH, 1_000)
            .unwrap()
            .unwrap()
    }

    fn new_session(user_id: i64, token: u8, now: i64) -> NewSession {
        NewSession {
            token_hash: [token; 32],
            user_id,
            password_changed_ms: 1_000,
            now_ms: now,
            expires_ms: now + 100_000,
            user_agent: Some("test".into()),
            ip: Some("127.0.0.1".into()),
            replaces: None,
        }
    }

    #[test]
    fn schema_version_wal_and_foreign_keys() {
        let (dir, s) = store();
        let c = Connection::open(dir.path().join("users.database")).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, migrations().last().unwrap().0);
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: bool = s
            .inner
            .writer
            .lock()
            .unwrap()
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(fk);
        drop(s);
        // Re-opening applies nothing twice.
        SqliteStore::open(&dir.path().join("users.database")).unwrap();
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        Connection::open(&p)
            .unwrap()
            .pragma_update(None, "user_version", 999)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&p),
            Err(StoreError::TooNew(999))
        ));
    }

    #[test]
    fn migrations_parse_in_order() {
        let m = migrations();
        assert!(!m.is_empty());
        assert!(m.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(m[0].0, 1);
    }

    #[test]
    fn uniqueness_of_username_and_email() {
        let (_d, s) = store();
        let email = Email::parse_optional("Ann@Example.com").unwrap();
        s.create_user(
            &Username::parse("ann").unwrap(),
            email.as_ref(),
            None,
            HASH,
            1,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(
            s.create_user(&Username::parse("ANN").unwrap(), None, None, HASH, 1),
            Ok(Err(Taken::Username))
        ));
        let upper = Email::parse_optional("ann@EXAMPLE.COM").unwrap();
        assert!(matches!(
            s.create_user(
                &Username::parse("ann2").unwrap(),
                upper.as_ref(),
                None,
                HASH,
                1
            ),
            Ok(Err(Taken::Email))
        ));
        assert!(matches!(
            s.taken(&Username::parse("ann").unwrap(), None),
            Ok(Some(Taken::Username))
        ));
        assert!(matches!(
            s.taken(&Username::parse("bob").unwrap(), upper.as_ref()),
            Ok(Some(Taken::Email))
        ));
        assert!(matches!(
            s.taken(&Username::parse("bob").unwrap(), None),
            Ok(None)
        ));
        // Two users without email are fine (NULLs are distinct).
        user(&s, "carol");
        user(&s, "dave");
    }

    #[test]
    fn sessions_need_an_unchanged_password_and_an_active_user() {
        let (_d, s) = store();
        let u = user(&s, "alice");
        let mut stale = new_session(u.id, 1, 2_000);
        stale.password_changed_ms = 999;
        assert_eq!(
            s.create_session(&stale).unwrap(),
            None,
            "password changed meanwhile"
        );
        // A rehash (same password, new PHC string) does not stop a sign-in.
        assert!(s.rehash(u.id, HASH, HASH2, 1_500).unwrap());
        let id = s
            .create_session(&new_session(u.id, 2, 2_000))
            .unwrap()
            .unwrap();
        let rec = s.session(&[2; 32]).unwrap().unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(rec.user.username, "alice");
        assert!(s.session(&[3; 32]).unwrap().is_none());
    }

    #[test]
    fn change_password_is_conditional_and_ends_other_sessions() {
        let (_d, s) = store();
        let u = user(&s, "alice");
        s.create_session(&new_session(u.id, 1, 2_000))
            .unwrap()
            .unwrap();
        s.create_session(&new_session(u.id, 2, 2_000))
            .unwrap()
            .unwrap();
        let mut rotated = new_session(u.id, 3, 3_000);
        rotated.password_changed_ms = 3_000;
        assert!(s.change_password(1_000, HASH2, &rotated).unwrap().is_some());
        assert!(s.session(&[1; 32]).unwrap().is_none());
        assert!(s.session(&[2; 32]).unwrap().is_none());
        let rec = s.session(&[3; 32]).unwrap().unwrap();
        assert_eq!(rec.state.password_changed_ms, 3_000);
        // A second change verified before the first one fails: it was changed meanwhile.
        let mut late = new_session(u.id, 4, 4_000);
        late.password_changed_ms = 4_000;
        assert!(s.change_password(1_000, HASH, &late).unwrap().is_none());
        assert!(s.session(&[4; 32]).unwrap().is_none());
        // Rehash from the old hash cannot bring the old password back.
        assert!(!s.rehash(u.id, HASH, HASH, 5_000).unwrap());
        assert!(s.rehash(u.id, HASH2, HASH, 5_000).unwrap());
    }

    #[test]
    fn at_most_fifty_sessions_per_user_oldest_go_first() {
        let (_d, s) = store();
        let u = user(&s, "alice");
        for i in 0..55u8 {
            s.create_session(&new_session(u.id, i, 2_000 + i as i64))
                .unwrap()
                .unwrap();
        }
        let list = s.sessions_of(u.id, 2_100, 1_000_000).unwrap();
        assert_eq!(list.len(), 50);
        for i in 0..5u8 {
            assert!(s.session(&[i; 32]).unwrap().is_none());
        }
        assert!(s.session(&[54; 32]).unwrap().is_some());
        assert_eq!(list[0].created_ms, 2_054, "newest first");
    }

    #[test]
    fn revoke_only_own_sessions_and_purge_expired() {
        let (_d, s) = store();
        let a = user(&s, "alice");
        let b = user(&s, "bob");
        let sa = s
            .create_session(&new_session(a.id, 1, 2_000))
            .unwrap()
            .unwrap();
        let sb = s
            .create_session(&new_session(b.id, 2, 2_000))
            .unwrap()
            .unwrap();
        assert!(!s.delete_user_session(a.id, sb).unwrap());
        assert!(s.session(&[2; 32]).unwrap().is_some());
        assert!(s.delete_user_session(a.id, sa).unwrap());
        s.create_session(&new_session(a.id, 3, 2_000)).unwrap();
        let keep = s
            .create_session(&new_session(a.id, 4, 2_000))
            .unwrap()
            .unwrap();
        assert_eq!(s.delete_other_sessions(a.id, keep).unwrap(), 1);
        // expires_at = 102_000
        assert_eq!(s.purge_expired_sessions(50_000, 1_000_000).unwrap(), 0);
        assert_eq!(s.purge_expired_sessions(102_000, 1_000_000).unwrap(), 2);
        s.create_session(&new_session(a.id, 5, 2_000)).unwrap();
        s.touch_later(keep, 1);
        assert_eq!(s.flush_touches().unwrap(), 1);
        assert_eq!(
            s.purge_expired_sessions(2_500, 500).unwrap(),
            1,
            "idle limit"
        );
    }

    #[test]
    fn touches_are_batched_and_never_move_last_seen_back() {
        let (_d, s) = store();
        let a = user(&s, "alice");
        let id = s
            .create_session(&new_session(a.id, 9, 5_000))
            .unwrap()
            .unwrap();
        s.touch_later(id, 7_000);
        s.touch_later(id, 6_000);
        assert_eq!(s.flush_touches().unwrap(), 1);
        assert_eq!(s.flush_touches().unwrap(), 0);
        s.touch_later(id, 5_500);
        s.flush_touches().unwrap();
        let rec = s.session(&[9; 32]).unwrap().unwrap();
        assert_eq!(rec.state.last_seen_ms, 7_000);
        // A touch for a session deleted meanwhile is harmless.
        s.delete_session_by_hash(&[9; 32]).unwrap();
        s.touch_later(id, 8_000);
        assert_eq!(s.flush_touches().unwrap(), 1);
    }

    #[test]
    fn cached_session_lookups_see_every_commit_from_any_connection() {
        let (dir, s) = store();
        let a = user(&s, "alice");
        s.create_session(&new_session(a.id, 7, 5_000))
            .unwrap()
            .unwrap();
        assert!(s.session(&[7; 32]).unwrap().is_some());
        assert!(s.session(&[7; 32]).unwrap().is_some(), "cached");
        assert!(s.session(&[8; 32]).unwrap().is_none(), "negative, cached");
        // Our own writer connection commits: seen at once.
        s.create_session(&new_session(a.id, 8, 5_000))
            .unwrap()
            .unwrap();
        assert!(s.session(&[8; 32]).unwrap().is_some());
        // Another process (here: another connection) revokes and disables: seen at once.
        let other = Connection::open(dir.path().join("users.database")).unwrap();
        other
            .execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [&[7u8; 32][..]],
            )
            .unwrap();
        assert!(s.session(&[7; 32]).unwrap().is_none());
        other.execute("UPDATE users SET active = 0", []).unwrap();
        assert!(!s.session(&[8; 32]).unwrap().unwrap().state.user_active);
    }

    #[test]
    fn disabled_users_get_no_session() {
        let (_d, s) = store();
        let u = user(&s, "alice");
        s.write(|c| Ok(c.execute("UPDATE users SET active = 0", [])?))
            .unwrap();
        assert_eq!(
            s.create_session(&new_session(u.id, 1, 2_000)).unwrap(),
            None
        );
    }

    #[test]
    fn deleting_a_user_deletes_their_sessions() {
        let (_d, s) = store();
        let u = user(&s, "alice");
        s.create_session(&new_session(u.id, 1, 2_000)).unwrap();
        s.write(|c| Ok(c.execute("DELETE FROM users WHERE id = ?1", [u.id])?))
            .unwrap();
        let n: i64 = s
            .read(|c| Ok(c.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 0);
    }
}
