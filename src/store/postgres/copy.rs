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

/// How a column is stored on PostgreSQL (SQLite's are looser: a boolean is 0 or 1).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Text,
    Bytes,
    Bool,
}

impl Kind {
    fn pg_type(self) -> Type {
        match self {
            Kind::Int => Type::INT8,
            Kind::Text => Type::TEXT,
            Kind::Bytes => Type::BYTEA,
            Kind::Bool => Type::BOOL,
        }
    }
}

use Kind::{Bool, Bytes, Int, Text};

/// A table both schemas share: its columns, and whether its `id` is an identity column.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    identity: bool,
}

/// Every table of the SQLite schema, in an order that satisfies the foreign keys.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("email", Text),
            ("full_name", Text),
            ("password_hash", Text),
            ("active", Bool),
            ("created_at", Int),
            ("updated_at", Int),
            ("password_changed_at", Int),
            ("unlocked_at", Int),
            ("email_verified_at", Int),
            ("pending_email", Text),
            ("pending_email_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Int),
            ("token_hash", Bytes),
            ("user_id", Int),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
            ("user_agent", Text),
            ("ip", Text),
        ],
        identity: true,
    },
    Table {
        name: "user_groups",
        columns: &[("user_id", Int), ("name", Text)],
        identity: false,
    },
    Table {
        name: "tokens",
        columns: &[
            ("hash", Bytes),
            ("user_id", Int),
            ("purpose", Text),
            ("email", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
        ],
        identity: false,
    },
    Table {
        name: "audit_events",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("last_at", Int),
            ("count", Int),
            ("event", Text),
            ("outcome", Text),
            ("username", Text),
            ("user_id", Int),
            ("ip", Text),
            ("user_agent", Text),
            ("detail", Text),
        ],
        identity: true,
    },
    Table {
        name: "retired_usernames",
        columns: &[("username", Text), ("retired_at", Int)],
        identity: false,
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("message_id", Text),
            ("recipient", Text),
            ("kind", Text),
            ("body", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("attempts", Int),
            ("next_try_at", Int),
            ("claimed_until", Int),
        ],
        identity: true,
    },
    Table {
        name: "mail_rate",
        columns: &[("recipient", Text), ("at", Int)],
        identity: false,
    },
    Table {
        name: "meta",
        columns: &[("name", Text), ("value", Text)],
        identity: false,
    },
    Table {
        name: "totp",
        columns: &[
            ("user_id", Int),
            ("secret", Bytes),
            ("created_at", Int),
            ("enabled_at", Int),
            ("last_step", Int),
        ],
        identity: false,
    },
    Table {
        name: "recovery_codes",
        columns: &[
            ("user_id", Int),
            ("hash", Bytes),
            ("created_at", Int),
            ("used_at", Int),
        ],
        identity: false,
    },
    Table {
        name: "pending_sign_ins",
        columns: &[
            ("hash", Bytes),
            ("user_id", Int),
            ("password_changed_at", Int),
            ("next_url", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        identity: false,
    },
    Table {
        name: "passkeys",
        columns: &[
            ("id", Int),
            ("user_id", Int),
            ("credential_id", Bytes),
            ("user_handle", Bytes),
            ("name", Text),
            ("passkey", Text),
            ("counter", Int),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "webauthn_ceremonies",
        columns: &[
            ("hash", Bytes),
            ("kind", Text),
            ("user_id", Int),
            ("address", Text),
            ("state", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        identity: false,
    },
];

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
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::testing::{Backend, TestDb};

    /// A SQLite database with rows in every table: NULLs and values, a disabled user, a
    /// mixed-case address, blobs, and a deleted user (so `sqlite_sequence` is past max(id)).
    fn sqlite_source() -> TestDb {
        let db = TestDb::new(Backend::Sqlite);
        drop(db.store());
        let c = Connection::open(&db.location).unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = ON;
             INSERT INTO users (id, username, email, full_name, password_hash, active,
                                created_at, updated_at, password_changed_at, unlocked_at,
                                email_verified_at, pending_email, pending_email_at)
             VALUES (1, 'ann', 'Ann.Lee@Example.ORG', 'Ann Lée', '$argon2id$v=19$a', 1,
                     10, 11, 12, 13, 14, 'new@example.org', 15),
                    (2, 'bob', NULL, NULL, '$argon2id$v=19$b', 0, 20, 20, 20, 0, NULL, NULL, NULL),
                    (3, 'gone', NULL, NULL, '$argon2id$v=19$c', 1, 30, 30, 30, 0, NULL, NULL, NULL);
             INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at,
                                   user_agent, ip)
             VALUES (5, randomblob(32), 1, 100, 101, 102, 'Firefox', '192.0.2.1'),
                    (9, randomblob(32), 2, 200, 201, 202, NULL, NULL),
                    (12, randomblob(32), 3, 1, 1, 1, NULL, NULL);
             INSERT INTO user_groups VALUES (1, 'staff'), (1, 'ops-2'), (2, 'staff');
             INSERT INTO tokens VALUES (randomblob(32), 1, 'reset', NULL, 1, 2, NULL),
                                       (randomblob(32), 1, 'verify', 'new@example.org', 3, 4, 5);
             INSERT INTO audit_events (id, at, last_at, count, event, outcome, username,
                                       user_id, ip, user_agent, detail)
             VALUES (7, 1, 2, 3, 'sign_in', 'locked', 'ann', 1, '192.0.2.1', 'curl', 'x'),
                    (8, 4, 4, 1, 'sign_up', 'ok', NULL, NULL, NULL, NULL, NULL);
             INSERT INTO outbox (id, message_id, recipient, kind, body, created_at, expires_at,
                                 attempts, next_try_at, claimed_until)
             VALUES (4, '<m1@x>', 'Ann.Lee@Example.ORG', 'password_reset', x'00ff10', 1, 2, 3, 4, 5);
             INSERT INTO mail_rate VALUES ('ann.lee@example.org', 6);
             INSERT INTO meta VALUES ('key_fingerprint', '0123456789abcdef');
             INSERT INTO totp VALUES (1, x'0102', 16, 17, 58000000);
             INSERT INTO recovery_codes VALUES (1, randomblob(32), 16, NULL),
                                               (1, randomblob(32), 16, 18);
             INSERT INTO pending_sign_ins VALUES (randomblob(32), 1, 12, '/members/?x=1', 19, 20);
             INSERT INTO passkeys (id, user_id, credential_id, user_handle, name, passkey,
                                   counter, created_at, last_used_at)
             VALUES (3, 1, x'c0ffee', x'0a0b', 'laptop', '{\"cred\":1}', 7, 21, 22),
                    (6, 2, x'beef', x'0c0d', 'phone', '{}', 0, 23, NULL);
             INSERT INTO webauthn_ceremonies VALUES (randomblob(32), 'authenticate', NULL,
                                                     '192.0.2.1', '{}', 24, 25),
                                                    (randomblob(32), 'register', 1,
                                                     '192.0.2.1', '{}', 26, 27);
             DELETE FROM users WHERE id = 3;",
        )
        .unwrap();
        db
    }

    /// Every row of every table, by its PostgreSQL type, in a stable order.
    fn sqlite_rows(path: &Path, t: &Table) -> Vec<Vec<Cell>> {
        let c = Connection::open(path).unwrap();
        let cols: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
        let sql = format!("SELECT {0} FROM {1} ORDER BY {0}", cols.join(", "), t.name);
        let mut stmt = c.prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(
                t.columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| Cell::read(r.get_ref(i).unwrap(), *k).unwrap())
                    .collect(),
            );
        }
        out
    }

    async fn pg_client(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    async fn pg_rows(client: &tokio_postgres::Client, t: &Table) -> Vec<Vec<Cell>> {
        let cols: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
        let sql = format!("SELECT {0} FROM {1} ORDER BY {0}", cols.join(", "), t.name);
        client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                t.columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| match k {
                        Int => Cell::Int(r.get(i)),
                        Text => Cell::Text(r.get(i)),
                        Bytes => Cell::Bytes(r.get(i)),
                        Bool => Cell::Bool(r.get(i)),
                    })
                    .collect()
            })
            .collect()
    }

    fn pg_store(db: &TestDb) -> PgStore {
        match db.store() {
            Store::Postgres(p) => p,
            Store::Sqlite(_) => unreachable!(),
        }
    }

    async fn copy(source: &Path, target: &PgStore) -> Result<Copied, CopyError> {
        from_sqlite(source, target, &mut |_| {}, &mut |_| {}).await
    }

    async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_row_of_every_table_arrives_as_it_was() {
        let source = sqlite_source();
        let target_db = TestDb::new(Backend::Postgres);
        let target = pg_store(&target_db);
        let copied = copy(&source.location, &target).await.unwrap();
        let counts: Vec<(&str, u64)> = copied.clone();
        assert_eq!(
            counts,
            [
                ("users", 2),
                ("sessions", 2),
                ("user_groups", 3),
                ("tokens", 2),
                ("audit_events", 2),
                ("retired_usernames", 1),
                ("outbox", 1),
                ("mail_rate", 1),
                ("meta", 1),
                ("totp", 1),
                ("recovery_codes", 2),
                ("pending_sign_ins", 1),
                ("passkeys", 2),
                ("webauthn_ceremonies", 2),
            ]
        );
        let client = pg_client(target_db.url()).await;
        for t in TABLES {
            let want = sqlite_rows(&source.location, t);
            assert_eq!(pg_rows(&client, t).await, want, "table {}", t.name);
        }
        let keys: Vec<Option<String>> = client
            .query("SELECT email_key FROM users ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(keys, [Some("ann.lee@example.org".to_owned()), None]);
        // New rows get ids past every id the source gave out, the deleted user's too.
        let store = Store::Postgres(target.clone());
        store
            .import_users(
                &[(
                    crate::domain::Username::parse("cyd").unwrap(),
                    "$argon2id$v=19$d".into(),
                )],
                1,
            )
            .await
            .unwrap();
        let cy = store
            .user_details(&crate::domain::Username::parse("cyd").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cy.id, 4, "users: past the deleted user 3");
        for (table, next) in [("sessions", 13), ("audit_events", 9), ("outbox", 5)] {
            let got: i64 = client
                .query_one(
                    &format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(got, next, "{table}");
        }
        // The copy passes the PostgreSQL check, and the sessions work.
        let report = super::super::check::check(target_db.url(), &Default::default())
            .await
            .unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!((report.users, report.sessions), (3, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_with_rows_is_refused_and_kept() {
        let source = sqlite_source();
        let target_db = TestDb::new(Backend::Postgres);
        let target = pg_store(&target_db);
        let client = pg_client(target_db.url()).await;
        client
            .batch_execute("INSERT INTO mail_rate VALUES ('x@example.org', 1)")
            .await
            .unwrap();
        let err = copy(&source.location, &target).await.unwrap_err();
        assert!(
            matches!(&err, CopyError::Refused(m) if m.contains("not empty (mail_rate")),
            "{err}"
        );
        assert_eq!(count(&client, "users").await, 0);
        assert_eq!(count(&client, "mail_rate").await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_tables_columns_and_versions_are_refused() {
        let target_db = TestDb::new(Backend::Postgres);
        let target = pg_store(&target_db);
        let client = pg_client(target_db.url()).await;
        for (change, expected) in [
            (
                "CREATE TABLE passkey_notes (id INTEGER PRIMARY KEY)",
                "table(s) this gatehouse does not know: passkey_notes",
            ),
            (
                "ALTER TABLE sessions ADD COLUMN device TEXT",
                "table sessions does not have the columns this gatehouse knows (unknown: device",
            ),
            ("PRAGMA user_version = 5", "schema version 5"),
            ("PRAGMA user_version = 8", "newer than this gatehouse"),
        ] {
            let source = sqlite_source();
            Connection::open(&source.location)
                .unwrap()
                .execute_batch(change)
                .unwrap();
            let err = check_source_file(&source.location).unwrap_err();
            assert!(err.to_string().contains(expected), "{change}: {err}");
            let err = copy(&source.location, &target).await.unwrap_err();
            assert!(err.to_string().contains(expected), "{change}: {err}");
            assert_eq!(count(&client, "users").await, 0, "{change}");
        }
        // SQLite's own bookkeeping is no stranger.
        let source = sqlite_source();
        Connection::open(&source.location)
            .unwrap()
            .execute_batch("ANALYZE")
            .unwrap();
        check_source_file(&source.location).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_half_way_leaves_the_target_empty() {
        let source = sqlite_source();
        // With foreign keys off, a group of a missing user gets in.
        Connection::open(&source.location)
            .unwrap()
            .execute_batch(
                "PRAGMA foreign_keys = OFF; INSERT INTO user_groups VALUES (99, 'orphans')",
            )
            .unwrap();
        let target_db = TestDb::new(Backend::Postgres);
        let target = pg_store(&target_db);
        let err = copy(&source.location, &target).await.unwrap_err();
        assert!(err.to_string().contains("user_groups"), "{err}");
        let client = pg_client(target_db.url()).await;
        for t in TABLES {
            assert_eq!(count(&client, t.name).await, 0, "{}", t.name);
        }
        // A value SQLite let in that has no PostgreSQL form: named, nothing written.
        let source = sqlite_source();
        Connection::open(&source.location)
            .unwrap()
            .execute_batch("UPDATE audit_events SET count = 'many' WHERE id = 8")
            .unwrap();
        let err = copy(&source.location, &target).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("audit_events row 2: column count holds Text"),
            "{err}"
        );
        assert_eq!(count(&client, "users").await, 0);
    }
}
