//! SQL on a test's database whichever backend holds it: assertions read rows (and a few tests
//! set a column no route sets) with statements SQLite and PostgreSQL both accept, e.g.
//! `active = false` rather than `active = 0`. Values come back as text, as PostgreSQL's simple
//! protocol gives them (a PostgreSQL boolean reads `t`/`f`, SQLite's 1/0: compare numbers and
//! text only). [`BareDatabase`] is a database with no server on it, for admin commands alone.
//! [`honoured`] waits, as §12 allows, for a server to honour a change made to its database from
//! outside it (SQL here, or an admin command).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::admin::{AdminRun, admin_with_key};
use super::postgres::{Backend, fresh_pg_database, random_key_hex, with_pg_client};
use super::server::TestApp;

/// Every row of `sql` on `database` (a SQLite file, or a `postgres://` URL), as text.
pub fn query_rows(database: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let target = database.to_string_lossy();
    if is_pg(&target) {
        return pg_rows(&target, sql);
    }
    let db = rusqlite::Connection::open(database).unwrap();
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let width = stmt.column_count();
    stmt.query_map([], |r| {
        (0..width)
            .map(|i| {
                use rusqlite::types::ValueRef;
                Ok(match r.get_ref(i)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(n) => Some(n.to_string()),
                    ValueRef::Real(x) => Some(x.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Runs `sql` (one statement) on `database`; the number of rows it changed.
pub fn execute_sql(database: &Path, sql: &str) -> u64 {
    let target = database.to_string_lossy();
    if is_pg(&target) {
        return pg_changed(&target, sql);
    }
    let db = rusqlite::Connection::open(database).unwrap();
    db.execute(sql, [])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .try_into()
        .unwrap()
}

/// The first column of the first row of `sql`, as an integer (a count, an id).
pub fn query_i64(database: &Path, sql: &str) -> i64 {
    query_text(database, sql)
        .unwrap_or_else(|| panic!("{sql}: NULL or no row"))
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of the first row of `sql` (None for NULL or no row).
pub fn query_text(database: &Path, sql: &str) -> Option<String> {
    query_rows(database, sql)
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten())
}

fn is_pg(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

fn pg_rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let sql = sql.to_owned();
    with_pg_client(url, async move |client| {
        let messages = client
            .simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

fn pg_changed(url: &str, sql: &str) -> u64 {
    let sql = sql.to_owned();
    with_pg_client(url, async move |client| {
        client
            .execute(sql.as_str(), &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

impl TestApp {
    /// Every row of `sql` on this server's database, either backend.
    pub fn query_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query_rows(&self.database(), sql)
    }

    /// The first value of `sql` as an integer, either backend.
    pub fn query_i64(&self, sql: &str) -> i64 {
        query_i64(&self.database(), sql)
    }

    /// The first value of `sql` as text, either backend.
    pub fn query_text(&self, sql: &str) -> Option<String> {
        query_text(&self.database(), sql)
    }

    /// Runs one statement on this server's database, either backend; rows changed.
    pub fn execute_sql(&self, sql: &str) -> u64 {
        execute_sql(&self.database(), sql)
    }
}

/// A fresh database with no server: a SQLite path (not yet created) or a new PostgreSQL
/// database, with the secret key admin commands need there.
pub struct BareDatabase {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key_hex: Option<String>,
}

impl BareDatabase {
    pub fn fresh(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (path, key_hex) = match backend {
            Backend::Sqlite => (dir.path().join("users.database"), None),
            Backend::Postgres => (PathBuf::from(fresh_pg_database()), Some(random_key_hex())),
        };
        Self {
            _dir: dir,
            path,
            key_hex,
        }
    }

    /// What `--database` says.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `gatehouse ARGS --database …` on it.
    pub fn admin(&self, args: &[&str], stdin: &str) -> AdminRun {
        admin_with_key(&self.path, self.key_hex.as_deref(), args, stdin)
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        query_i64(&self.path, sql)
    }
}

/// What docs/behaviour.md §12 allows a PostgreSQL server before it honours a change made by
/// another process (its session cache learns of it by notification).
pub const PROPAGATION: Duration = Duration::from_millis(100);

/// Whether `check` holds after a change made outside `app` (an admin command, SQL): asked once
/// on SQLite, where the very next request sees the change; on PostgreSQL asked again until it
/// holds or [`PROPAGATION`] has passed.
pub async fn honoured<F, Fut>(app: &TestApp, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PROPAGATION;
    loop {
        if check().await {
            return true;
        }
        if app.backend() == Backend::Sqlite || Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
