//! Reads the users of the original demo's SQLite file for `gatehouse import-seed`: the only
//! foreign SQLite file Gatehouse opens, read-only.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Why the demo file could not be read; each carries SQLite's message.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0}")]
    Open(String),
    #[error("{0}")]
    NoUsersTable(String),
    #[error("{0}")]
    Rows(String),
}

/// (username, password_hash) of every row of `users`, in id order; NULLs as empty text.
pub fn read_users(path: &Path) -> Result<Vec<(String, String)>, SeedError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| SeedError::Open(e.to_string()))?;
    let mut stmt = conn
        .prepare("SELECT username, password_hash FROM users ORDER BY id")
        .map_err(|e| SeedError::NoUsersTable(e.to_string()))?;
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        ))
    })
    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
    .map_err(|e| SeedError::Rows(e.to_string()))
}
