//! Sessions on SQLite: opening one (with the per-user cap and the password-change guard),
//! the cached per-page lookup, revocation, the batched "last seen" writes and expiry.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SESSION_CACHE, SqliteStore};
use crate::store::{NewSession, Result, SessionRecord, SessionSummary, User};

impl SqliteStore {
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
                        u.password_changed_at,
                        (SELECT group_concat(name, ',')
                           FROM (SELECT name FROM user_groups WHERE user_id = u.id ORDER BY name)),
                        u.email_verified_at IS NOT NULL
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
                groups: r
                    .get::<_, Option<String>>(11)?
                    .map(|g| g.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
                email_verified: r.get(12)?,
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
