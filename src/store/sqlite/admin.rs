//! SQL behind the admin commands: user management, session listing, integrity check, online
//! backup, the seed import's batches and the benchmark's bulk data.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{SqliteStore, migrations};
use crate::domain::Username;
use crate::store::{CheckReport, ImportOutcome, Result, SessionListing, StoreError, UserDetails};

/// A user with a precomputed hash, skipped when the name exists (imports, bench data).
const INSERT_USER_IF_NEW: &str =
    "INSERT INTO users (username, password_hash, active, created_at, updated_at, password_changed_at)
     VALUES (?1, ?2, 1, ?3, ?3, ?3) ON CONFLICT (username) DO NOTHING";

const USER_COLUMNS: &str = "u.id, u.username, u.email, u.full_name, u.active, u.created_at,
     u.password_changed_at, u.unlocked_at,
     (SELECT count(*) FROM sessions s WHERE s.user_id = u.id),
     u.email_verified_at IS NOT NULL, u.pending_email";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserDetails> {
    Ok(UserDetails {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        full_name: r.get(3)?,
        active: r.get(4)?,
        created_ms: r.get(5)?,
        password_changed_ms: r.get(6)?,
        unlocked_ms: r.get(7)?,
        sessions: r.get(8)?,
        email_verified: r.get(9)?,
        pending_email: r.get(10)?,
    })
}

impl SqliteStore {
    pub fn list_users(&self) -> Result<Vec<UserDetails>> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users u ORDER BY u.username"
            ))?;
            let rows = stmt.query_map([], user_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn user_details_by_id(&self, user_id: i64) -> Result<Option<UserDetails>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
                [user_id],
                user_row,
            )
            .optional()?)
        })
    }

    pub fn user_details(&self, username: &Username) -> Result<Option<UserDetails>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"),
                [username.as_str()],
                user_row,
            )
            .optional()?)
        })
    }

    /// Enables or disables a user; disabling ends their sessions in the same transaction.
    /// Returns the user's id, or `None` when there is no such user.
    pub fn set_active(
        &self,
        username: &Username,
        active: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let id: Option<i64> = tx
                .query_row(
                    "UPDATE users SET active = ?2, updated_at = ?3 WHERE username = ?1 RETURNING id",
                    params![username.as_str(), active, now_ms],
                    |r| r.get(0),
                )
                .optional()?;
            if let (Some(id), false) = (id, active) {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    /// Deletes a user (their sessions go with them). Returns the id it had.
    pub fn delete_user(&self, username: &Username) -> Result<Option<i64>> {
        self.write(|c| {
            Ok(c.query_row(
                "DELETE FROM users WHERE username = ?1 RETURNING id",
                [username.as_str()],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Deletes a user by id (their own account deletion); whether there was one.
    pub fn delete_user_by_id(&self, user_id: i64) -> Result<bool> {
        self.write(|c| Ok(c.execute("DELETE FROM users WHERE id = ?1", [user_id])? == 1))
    }

    /// Records an admin unlock: the server forgives lock records older than `now_ms`.
    pub fn unlock_user(&self, username: &Username, now_ms: i64) -> Result<Option<i64>> {
        self.write(|c| {
            Ok(c.query_row(
                "UPDATE users SET unlocked_at = ?2 WHERE username = ?1 RETURNING id",
                params![username.as_str(), now_ms],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// An admin's new password: replaces the hash, moves `password_changed_at` (which kills
    /// device cookies), ends every session and lifts the lock. Returns the user's id.
    pub fn set_password(
        &self,
        username: &Username,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let id: Option<i64> = tx
                .query_row(
                    "UPDATE users SET password_hash = ?2, updated_at = ?3,
                            password_changed_at = max(?3, password_changed_at + 1), unlocked_at = ?3
                     WHERE username = ?1 RETURNING id",
                    params![username.as_str(), hash, now_ms],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = id {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    /// Live sessions (not past their absolute or idle limit), optionally of one user.
    pub fn list_sessions(
        &self,
        username: Option<&Username>,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionListing>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT s.id, u.username, s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.expires_at > ?1 AND s.last_seen_at > ?1 - ?2
                   AND (?3 IS NULL OR u.username = ?3)
                 ORDER BY s.id",
            )?;
            let rows = stmt.query_map(
                params![now_ms, idle_ms, username.map(Username::as_str)],
                |r| {
                    Ok(SessionListing {
                        id: r.get(0)?,
                        username: r.get(1)?,
                        created_ms: r.get(2)?,
                        last_seen_ms: r.get(3)?,
                        expires_ms: r.get(4)?,
                        ip: r.get(5)?,
                        user_agent: r.get(6)?,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Deletes a session by its public id. Returns its owner's (id, username).
    pub fn revoke_session(&self, session_id: i64) -> Result<Option<(i64, String)>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let owner: Option<(i64, String)> = tx
                .query_row(
                    "SELECT u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id = ?1",
                    [session_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            tx.execute("DELETE FROM sessions WHERE id = ?1", [session_id])?;
            tx.commit()?;
            Ok(owner)
        })
    }

    /// Inserts imported users (hashes computed beforehand, outside this transaction), skipping
    /// names that exist.
    pub fn import_users(
        &self,
        users: &[(Username, String)],
        now_ms: i64,
    ) -> Result<Vec<ImportOutcome>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut out = Vec::with_capacity(users.len());
            {
                let mut insert = tx.prepare_cached(INSERT_USER_IF_NEW)?;
                for (name, hash) in users {
                    out.push(
                        match insert.execute(params![name.as_str(), hash, now_ms])? {
                            1 => ImportOutcome::Imported,
                            _ => ImportOutcome::Exists,
                        },
                    );
                }
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// Users whose name does not start with `prefix` (bench-data's guard).
    pub fn count_users_outside(&self, prefix: &str) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM users WHERE substr(username, 1, length(?1)) <> ?1",
                [prefix],
                |r| r.get(0),
            )?)
        })
    }

    /// Benchmark data: users `{prefix}{n}` for n in `from..to`, all with `hash`, each given one
    /// session whose token hash is SHA-256 of the session id `session_id(n)` (the caller's
    /// predictable ids) where that is `Some`. One transaction per call; callers batch.
    pub fn bench_fill(
        &self,
        prefix: &str,
        range: std::ops::Range<u64>,
        session_id: impl Fn(u64) -> Option<crate::security::session::SessionId>,
        hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            {
                let mut user = tx.prepare_cached(
                    INSERT_USER_IF_NEW,
                )?;
                let mut session = tx.prepare_cached(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
                     SELECT ?1, id, ?3, ?3, ?4 FROM users WHERE username = ?2
                     ON CONFLICT (token_hash) DO NOTHING",
                )?;
                for n in range {
                    let name = format!("{prefix}{n}");
                    user.execute(params![name, hash, now_ms])?;
                    if let Some(id) = session_id(n) {
                        session.execute(params![&id.hash()[..], name, now_ms, expires_ms])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// A consistent copy of the live database at `dest` (which must not exist), taken with
    /// SQLite's online backup API from one snapshot ([`copy_snapshot`]): in WAL mode the
    /// server's writers are not blocked meanwhile. `progress(bytes_done, bytes_total)`.
    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: dest.display().to_string(),
            message: e.to_string(),
        };
        // Created here, not by SQLite (which would follow a dangling symlink and use the
        // umask): exclusive, no symlink followed, mode 0600 (its journal inherits it).
        super::files::create_private_new(dest).map_err(|e| match e {
            e if super::files::is_taken(&e) => StoreError::Exists(dest.display().to_string()),
            e => StoreError::Open {
                path: dest.display().to_string(),
                message: e.to_string(),
            },
        })?;
        let mut out = Connection::open_with_flags(
            dest,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(open_err)?;
        self.read(|src| copy_snapshot(src, &mut out, BACKUP_STEP_PAGES, progress))?;
        // The copy is a plain rollback-journal file until someone opens it as a server would.
        out.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(())
    }
}

/// Pages a backup copies per step (4 MiB at the default 4 KiB page), between progress reports.
const BACKUP_STEP_PAGES: i32 = 1024;

/// Copies `src` into `out` `pages` at a time, all from one snapshot: a read transaction held
/// on `src` across the steps pins it, so writes by other connections (the server's) neither
/// show up half-way nor restart the copy, which the backup API does when a step opens its own
/// transaction and finds the file changed (measured: docs/design.md, issue 10 point 6).
fn copy_snapshot(
    src: &Connection,
    out: &mut Connection,
    pages: i32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let snapshot = src.unchecked_transaction()?;
    // A deferred transaction reads nothing until asked: this read starts the snapshot.
    snapshot.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    let page_size: i64 = src.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let page_size = page_size.max(0) as u64;
    let backup = Backup::new(src, out)?;
    loop {
        let step = backup.step(pages)?;
        let p = backup.progress();
        let total = p.pagecount.max(0) as u64;
        let done = total.saturating_sub(p.remaining.max(0) as u64);
        progress(done * page_size, total * page_size);
        match step {
            StepResult::Done => break,
            StepResult::More => {}
            // Only the destination can be busy (the source is read from a held snapshot);
            // it is a new file of ours, so this is brief.
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    drop(backup);
    snapshot.rollback()?;
    Ok(())
}

/// Integrity and schema of the file at `path`, opened read-only (a check never upgrades or
/// creates anything).
pub fn check(path: &Path) -> Result<CheckReport> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let c =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(open_err)?;
    c.busy_timeout(super::BUSY_TIMEOUT)?;
    let mut problems = Vec::new();
    {
        let mut stmt = c.prepare("PRAGMA integrity_check")?;
        for line in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let line = line?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut stmt = c.prepare("PRAGMA foreign_key_check")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (table, rowid) = row?;
            problems.push(format!("{table} row {rowid} points at a missing row"));
        }
    }
    let schema_version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let count = |table: &str| -> Result<i64> {
        Ok(
            c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap_or(0),
        )
    };
    Ok(CheckReport {
        problems,
        schema_version,
        latest_version: migrations().last().map_or(0, |m| m.0),
        users: count("users")?,
        sessions: count("sessions")?,
    })
}

#[cfg(test)]
mod backup_tests {
    use super::*;

    fn any_id(_: u64) -> Option<crate::security::session::SessionId> {
        Some(crate::security::session::SessionId::generate())
    }

    fn count_users(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap()
    }

    /// A write by another connection between two steps: the copy neither restarts nor takes
    /// it in, and is sound.
    #[test]
    fn a_stepped_backup_is_one_snapshot_while_another_connection_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.database");
        let store = SqliteStore::open(&path).unwrap();
        let long = format!("$argon2id${}", "x".repeat(200));
        store
            .bench_fill("bench", 0..2000, any_id, &long, 1, 2)
            .unwrap();
        let writer = SqliteStore::open(&path).unwrap();
        let copy = dir.path().join("copy.database");
        let mut out = Connection::open(&copy).unwrap();
        let mut seen: Vec<(u64, u64)> = Vec::new();
        store
            .read(|src| {
                copy_snapshot(src, &mut out, 8, &mut |done, total| {
                    if seen.len() == 2 {
                        // Rows on pages copied already and on pages still to come.
                        writer
                            .bench_fill("later", 0..500, any_id, &long, 1, 2)
                            .unwrap();
                    }
                    seen.push((done, total));
                })
            })
            .unwrap();
        drop(out);
        let (_, total) = *seen.last().unwrap();
        assert!(
            total > 0 && seen.iter().all(|&(_, t)| t == total),
            "{seen:?}"
        );
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0),
            "restarted: {seen:?}"
        );
        assert_eq!(seen.last().unwrap().0, total);
        let page_size: u64 = Connection::open(&copy)
            .unwrap()
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap();
        let pages = total / page_size;
        assert_eq!(seen.len() as u64, pages.div_ceil(8), "{seen:?}");
        assert!(seen.len() > 10, "the copy took {} steps", seen.len());
        assert_eq!(count_users(&copy), 2000, "the copy is the snapshot");
        assert_eq!(count_users(&path), 2500, "the write happened");
        assert!(check(&copy).unwrap().problems.is_empty());
    }
}
