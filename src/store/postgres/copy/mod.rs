//! `gatehouse db copy --to postgres://…`: a SQLite database moved into an empty PostgreSQL
//! one, every row of every table kept with its id, so users sign in with their passwords,
//! session cookies stay valid and the audit trail stays whole.
//!
//! Refused before anything is written: a source whose schema version is not this binary's, a
//! source with a table (or a column) this binary does not know (it would be lost silently),
//! and a target that holds any row in the tables it copies. The source is read from one
//! snapshot; the target is written in one transaction (binary `COPY`, so a million users take
//! seconds), so a failure leaves it as empty as it was. Each identity sequence is then moved
//! past the largest id the source ever gave out (`sqlite_sequence` remembers deleted rows'
//! ids too), so no new user inherits a deleted user's audit trail.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::PgStore;
use crate::store::StoreError;

mod tables;

use tables::Kind::{Bool, Bytes, Int, Text};
use tables::{Kind, TABLES, Table};

/// Why a copy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Refused before writing: the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CopyError {
    fn from(e: rusqlite::Error) -> Self {
        CopyError::Store(e.into())
    }
}

/// With the server's own words: which constraint a row broke is what the operator needs.
impl From<tokio_postgres::Error> for CopyError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => CopyError::Store(StoreError::Backend(match db.detail() {
                Some(detail) => format!("{} ({detail})", db.message()),
                None => db.message().to_owned(),
            })),
            None => match std::error::Error::source(&e) {
                Some(cause) => CopyError::Store(StoreError::Unavailable(format!("{e}: {cause}"))),
                None => CopyError::Store(e.into()),
            },
        }
    }
}

/// Rows copied, per table, in copy order.
pub type Copied = Vec<(&'static str, u64)>;

/// Checks the SQLite database at `source` as [`from_sqlite`] does first, without a target:
/// so a source that would be refused is refused before the target is even opened.
pub fn check_source_file(source: &Path) -> Result<(), CopyError> {
    check_source(&open_source(source)?, source)
}

fn open_source(source: &Path) -> Result<Connection, CopyError> {
    let src =
        Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
            StoreError::Open {
                path: source.display().to_string(),
                message: e.to_string(),
            }
        })?;
    src.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(src)
}

/// Copies the SQLite database at `source` into `target` (see the module's comment).
/// `started(total_rows)` is called once the source is checked, `copied(n)` as rows go.
pub async fn from_sqlite(
    source: &Path,
    target: &PgStore,
    started: &mut dyn FnMut(u64),
    copied: &mut dyn FnMut(u64),
) -> Result<Copied, CopyError> {
    let src = open_source(source)?;
    // One snapshot for every read: a deferred transaction starts it at its first read.
    src.execute_batch("BEGIN")?;
    check_source(&src, source)?;
    let mut total = 0u64;
    for t in TABLES {
        let n: i64 = src.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
            r.get(0)
        })?;
        total += n.max(0) as u64;
    }
    let sequences = source_sequences(&src)?;

    let mut client = target.client().await?;
    let tx = client.transaction().await?;
    // A big copy outlasts `--db-timeout`, which is meant for a request's statements.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '10s'")
        .await?;
    // No instance may write between the emptiness check and the commit.
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))
    .await?;
    let mut not_empty = Vec::new();
    for t in TABLES {
        let has_rows: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.name), &[])
            .await?
            .get(0);
        if has_rows {
            not_empty.push(t.name);
        }
    }
    if !not_empty.is_empty() {
        return Err(CopyError::Refused(format!(
            "the target {} is not empty ({} hold rows): db copy only fills a new, empty \
             database",
            target.display(),
            not_empty.join(", ")
        )));
    }
    started(total);

    let mut out = Copied::new();
    for t in TABLES {
        let n = copy_table(&src, &tx, t, copied).await?;
        out.push((t.name, n));
    }
    for t in TABLES.iter().filter(|t| t.identity) {
        let used = sequences.get(t.name).copied().unwrap_or(0);
        // `setval(…, n, true)`: the next id is n + 1. Nothing to move on an empty table
        // whose source never gave out an id.
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), m, true)
                 FROM (SELECT GREATEST((SELECT max(id) FROM {0}), $1) AS m) AS x
                 WHERE m IS NOT NULL AND m > 0",
                t.name
            ),
            &[&used],
        )
        .await?;
    }
    tx.commit().await?;
    src.execute_batch("COMMIT")?;
    // Nothing was cached from an empty database but "no such session": forget that too.
    target.inner.cache.forget_all();
    Ok(out)
}

/// Refuses a source this binary cannot copy whole.
fn check_source(src: &Connection, path: &Path) -> Result<(), CopyError> {
    let latest = crate::store::sqlite::sections(crate::store::sqlite::SCHEMA)
        .last()
        .map_or(0, |s| s.0);
    let version: i64 = src.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != latest {
        return Err(CopyError::Refused(if version < latest {
            format!(
                "{} has schema version {version}, this gatehouse copies version {latest}: \
                 upgrade it first (any command on it does, e.g. `gatehouse user list \
                 --database {}`)",
                path.display(),
                path.display()
            )
        } else {
            format!(
                "{} has schema version {version}, newer than this gatehouse ({latest}): copy \
                 it with the newer binary",
                path.display()
            )
        }));
    }
    let mut stmt =
        src.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // `sqlite_…` names are SQLite's own (`sqlite_sequence`, `sqlite_stat1`): no table of
    // anyone else's can have one.
    let unknown: Vec<&str> = tables
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with("sqlite_") && !TABLES.iter().any(|t| t.name == *n))
        .collect();
    if !unknown.is_empty() {
        return Err(CopyError::Refused(format!(
            "{} holds table(s) this gatehouse does not know: {}; db copy would lose them, so \
             nothing was copied (drop them, or copy with the gatehouse that made them)",
            path.display(),
            unknown.join(", ")
        )));
    }
    for t in TABLES {
        let mut stmt = src.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let columns: Vec<String> = stmt
            .query_map([t.name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let extra: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|c| !t.columns.iter().any(|(k, _)| k == c))
            .collect();
        let missing: Vec<&str> = t
            .columns
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| !columns.iter().any(|k| k == c))
            .collect();
        if !extra.is_empty() || !missing.is_empty() {
            return Err(CopyError::Refused(format!(
                "{}: table {} does not have the columns this gatehouse knows (unknown: {}; \
                 missing: {}); nothing was copied",
                path.display(),
                t.name,
                if extra.is_empty() {
                    "none".into()
                } else {
                    extra.join(", ")
                },
                if missing.is_empty() {
                    "none".into()
                } else {
                    missing.join(", ")
                },
            )));
        }
    }
    Ok(())
}

/// The largest id each AUTOINCREMENT table ever gave out (deleted rows' included).
fn source_sequences(src: &Connection) -> rusqlite::Result<HashMap<String, i64>> {
    let exists: bool = src.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(HashMap::new());
    }
    let mut stmt = src.prepare("SELECT name, seq FROM sqlite_sequence")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// One value on its way: PostgreSQL's type, read from SQLite's.
#[derive(Debug, PartialEq, Eq)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Cell {
    fn read(v: ValueRef<'_>, kind: Kind) -> Result<Self, String> {
        Ok(match (kind, v) {
            (Int, ValueRef::Null) => Cell::Int(None),
            (Int, ValueRef::Integer(i)) => Cell::Int(Some(i)),
            (Text, ValueRef::Null) => Cell::Text(None),
            (Text, ValueRef::Text(t)) => Cell::Text(Some(
                String::from_utf8(t.to_vec()).map_err(|_| "text that is not UTF-8".to_owned())?,
            )),
            (Bytes, ValueRef::Null) => Cell::Bytes(None),
            (Bytes, ValueRef::Blob(b)) => Cell::Bytes(Some(b.to_vec())),
            (Bool, ValueRef::Null) => Cell::Bool(None),
            (Bool, ValueRef::Integer(i @ (0 | 1))) => Cell::Bool(Some(i == 1)),
            (kind, v) => return Err(format!("{:?} where {kind:?} belongs", v.data_type())),
        })
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Text(v) => v,
            Cell::Bytes(v) => v,
            Cell::Bool(v) => v,
        }
    }
}

/// Streams one table from the source into `COPY … FROM STDIN (FORMAT binary)`. Users also get
/// their `email_key`.
async fn copy_table(
    src: &Connection,
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    copied: &mut dyn FnMut(u64),
) -> Result<u64, CopyError> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let users = table.name == "users";
    let email_at = columns.iter().position(|c| *c == "email");
    let mut types: Vec<Type> = table.columns.iter().map(|(_, k)| k.pg_type()).collect();
    let mut target_columns = columns.clone();
    if users {
        types.push(Type::TEXT);
        target_columns.push("email_key");
    }
    let sink = tx
        .copy_in(&format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            table.name,
            target_columns.join(", ")
        ))
        .await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    // Rowid order: ids ascending, as they were given out.
    let mut stmt = src.prepare(&format!(
        "SELECT {} FROM {} ORDER BY rowid",
        columns.join(", "),
        table.name
    ))?;
    let mut rows = stmt.query([])?;
    let mut n = 0u64;
    let mut cells: Vec<Cell> = Vec::with_capacity(types.len());
    while let Some(row) = rows.next()? {
        cells.clear();
        for (i, (column, kind)) in table.columns.iter().enumerate() {
            let cell = Cell::read(row.get_ref(i)?, *kind).map_err(|why| {
                CopyError::Refused(format!(
                    "{} row {}: column {column} holds {why}; nothing was copied",
                    table.name,
                    n + 1
                ))
            })?;
            cells.push(cell);
        }
        if users {
            let key = match email_at.map(|i| &cells[i]) {
                Some(Cell::Text(Some(email))) => Some(crate::domain::email_key(email)),
                _ => None,
            };
            cells.push(Cell::Text(key));
        }
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
        writer.as_mut().write(&values).await?;
        n += 1;
        if n.is_multiple_of(10_000) {
            copied(10_000);
        }
    }
    let written = writer.finish().await?;
    copied(n % 10_000);
    debug_assert_eq!(written, n);
    Ok(n)
}

#[cfg(test)]
mod tests;
