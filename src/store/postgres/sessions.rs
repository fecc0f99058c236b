//! Sessions on PostgreSQL: opening one (with the per-user cap, the password-change guard and
//! its sign-in event), the cached per-page lookup, revocation, the batched "last seen" writes
//! and expiry (mirrors the SQLite store's `sessions.rs`).
//!
//! SQLite serialises writers; here instances write at once, so opening a session locks the
//! user's row (`FOR NO KEY UPDATE`, in the insert's own `SELECT`) and checks the guard on it: a
//! password change or a disable (which update that row) either commits first, and the guard,
//! re-checked on the row's newest version after the wait (PostgreSQL's rule for locking reads),
//! sees it; or it waits for the session to commit, and its own `DELETE FROM sessions` (a later
//! statement, so a later snapshot) ends it. A writer that takes a user's row takes it before any
//! session row, as a user's deletion does, so two such writers cannot deadlock.
//!
//! Two sign-ins of one user queue on the same lock. The per-user cap is the schema's
//! `sessions_capped` trigger, run in the inserting statement while it holds that lock, with a
//! fresh snapshot: it counts every session committed before it, so the later of two parallel
//! sign-ins counts both sessions.
//!
//! Every write that removes a session forgets its user in this instance's cache at once
//! ([`super::cache`]); the database's triggers tell the other instances.

use std::sync::LazyLock;

use tokio::try_join;
use tokio_postgres::types::ToSql;

use super::PgStore;
use crate::security::session::SessionPolicy;
use crate::store::{AuditEvent, NewSession, Result, SessionRecord, SessionSummary, User};

/// Inserts the session if the user is active and their password unchanged since it was
/// verified, holding the user's row until commit (see the module's note). Answers the new id
/// (no row: refused).
const OPEN: &str = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at,
                                          expires_at, user_agent, ip)
     SELECT $1, id, $3, $3, $4, $5, $6 FROM users
     WHERE id = $2 AND password_changed_at = $7 AND active
     FOR NO KEY UPDATE
     RETURNING id";

/// [`OPEN`] and, in the same statement (so the same transaction), the sign-in event, written
/// only if the session was. Answers one row: the new id or NULL.
static OPEN_SIGNED_IN: LazyLock<String> = LazyLock::new(|| {
    format!("WITH opened AS ({OPEN}), {EVENT} SELECT (SELECT id FROM opened), NULL::bigint")
});

/// [`OPEN_SIGNED_IN`] that also ends the session being replaced (rotation, `$18`). Answers the
/// new id and the replaced session's user, each or both NULL.
static REPLACE_OPEN_SIGNED_IN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH opened AS ({OPEN}), {EVENT},
              replaced AS (DELETE FROM sessions WHERE token_hash = $18 RETURNING user_id)
         SELECT (SELECT id FROM opened), (SELECT user_id FROM replaced)"
    )
});

/// The sign-in event of [`OPEN_SIGNED_IN`], one row per session opened (so none when refused).
const EVENT: &str = "event AS (INSERT INTO audit_events
         (at, last_at, count, event, outcome, username, user_id, ip, user_agent, detail)
     SELECT $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 FROM opened)";

/// The schema's `sessions_capped` trigger (version 8) keeps a user's newest 50 sessions, in the
/// statement that inserts one.
const _: () = assert!(SessionPolicy::MAX_PER_USER == 50);

impl PgStore {
    /// Changes the password if it has not changed since `old_changed_ms` (when the current one
    /// was verified), ends every session of the user and opens `session` in its place, all in
    /// one transaction. `session.password_changed_ms` becomes the new change time. Returns the
    /// new session's id, or `None` when the password was changed meanwhile (or the user was
    /// disabled).
    pub async fn change_password(
        &self,
        old_changed_ms: i64,
        new_hash: String,
        session: NewSession,
    ) -> Result<Option<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = $3, updated_at = $4, password_changed_at = $4
                 WHERE id = $1 AND password_changed_at = $2 AND active",
                &[
                    &session.user_id,
                    &old_changed_ms,
                    &new_hash,
                    &session.password_changed_ms,
                ],
            )
            .await?;
        if changed != 1 {
            return Ok(None);
        }
        // Prepared first: a statement given as text is parsed in a round trip of its own
        // before it is sent, which would reorder the pipelined statements below.
        let (end_all, open) = try_join!(
            tx.prepare_cached("DELETE FROM sessions WHERE user_id = $1"),
            tx.prepare_cached(OPEN),
        )?;
        let hash: &[u8] = &session.token_hash;
        let (end_all_args, open_args) = (
            [&session.user_id as &(dyn ToSql + Sync)],
            open_params(&session, &hash),
        );
        // Sent together, in this order (`biased`: polled first to last, and each sends its
        // request on its first poll); the server runs them in turn.
        let (_, opened) = try_join!(
            biased;
            tx.execute(&end_all, &end_all_args),
            tx.query_opt(&open, &open_args),
        )?;
        tx.commit().await?;
        self.inner.cache.forget_user(session.user_id);
        Ok(opened.map(|r| r.get(0)))
    }

    /// Opens a session for a user whose password has not changed since it was verified and who
    /// is active, drops the replaced session and the user's oldest beyond the per-user cap, and
    /// records `signed_in`: one statement (the cap is the schema's trigger on the insert).
    pub async fn open_session(
        &self,
        session: NewSession,
        signed_in: AuditEvent,
    ) -> Result<Option<i64>> {
        let client = self.client().await?;
        let opening = match session.replaces {
            Some(_) => REPLACE_OPEN_SIGNED_IN.as_str(),
            None => OPEN_SIGNED_IN.as_str(),
        };
        let open = client.prepare_cached(opening).await?;
        let hash: &[u8] = &session.token_hash;
        let e = &signed_in;
        let agent = e.user_agent.as_deref().map(super::audit::truncate_agent);
        let (last, count) = (e.last_ms.max(e.at_ms), e.count.max(1));
        let replaced: Option<&[u8]> = session.replaces.as_ref().map(|h| &h[..]);
        let mut open_args = open_params(&session, &hash).to_vec();
        open_args.extend_from_slice(&[
            &e.at_ms as &(dyn ToSql + Sync),
            &last,
            &count,
            &e.event,
            &e.outcome,
            &e.username,
            &e.user_id,
            &e.ip,
            &agent,
            &e.detail,
        ]);
        if session.replaces.is_some() {
            open_args.push(&replaced);
        }
        let row = client.query_one(&open, &open_args).await?;
        let opened: Option<i64> = row.get(0);
        let replaced_user: Option<i64> = row.get(1);
        if opened.is_some() {
            self.inner.cache.forget_user(session.user_id);
        }
        if let Some(user_id) = replaced_user {
            self.inner.cache.forget_user(user_id);
        }
        Ok(opened)
    }

    /// The session with this token hash, joined with its user: from this instance's cache
    /// while it is trusted and nothing changed (see [`super::cache`]), else one query.
    pub async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let ticket = match self.inner.cache.get(token_hash, std::time::Instant::now()) {
            super::cache::Lookup::Hit(found) => return Ok(found),
            super::cache::Lookup::Miss(ticket) => ticket,
        };
        let found = self.session_row(token_hash).await?;
        self.inner.cache.put(*token_hash, found.clone(), ticket);
        // This instance's unflushed uses are newer than the row.
        Ok(found.map(|r| self.inner.cache.freshen(r)))
    }

    async fn session_row(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT s.id, s.created_at, s.last_seen_at, s.expires_at,
                        u.id, u.username, u.email, u.full_name, u.created_at, u.active,
                        u.password_changed_at,
                        (SELECT string_agg(name, ',' ORDER BY name COLLATE \"C\")
                           FROM user_groups WHERE user_id = u.id),
                        u.email_verified_at IS NOT NULL
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&&token_hash[..]]).await?;
        Ok(row.map(|r| SessionRecord {
            id: r.get(0),
            user: User {
                id: r.get(4),
                username: r.get(5),
                email: r.get(6),
                full_name: r.get(7),
                created_ms: r.get(8),
            },
            state: crate::security::session::SessionState {
                created_ms: r.get(1),
                last_seen_ms: r.get(2),
                expires_ms: r.get(3),
                user_active: r.get(9),
                password_changed_ms: r.get(10),
            },
            groups: r
                .get::<_, Option<String>>(11)
                .map(|g| g.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            email_verified: r.get(12),
        }))
    }

    pub fn touch_later(&self, id: i64, now_ms: i64) {
        self.inner.cache.touch(id, now_ms);
        let mut touches = self.inner.touches.lock().unwrap_or_else(|e| e.into_inner());
        let t = touches.entry(id).or_insert(now_ms);
        *t = (*t).max(now_ms);
    }

    /// Writes the pending "last seen" times in one statement. Returns how many. On failure
    /// they stay pending for the next flush (the database was away, say).
    pub async fn flush_touches(&self) -> Result<usize> {
        let pending =
            std::mem::take(&mut *self.inner.touches.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return Ok(0);
        }
        // In id order, so two instances flushing at once lock rows in the same order.
        let mut sorted: Vec<(i64, i64)> = pending.iter().map(|(id, at)| (*id, *at)).collect();
        sorted.sort_unstable();
        let (ids, ats): (Vec<i64>, Vec<i64>) = sorted.into_iter().unzip();
        let written = async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE sessions s SET last_seen_at = t.at
                     FROM unnest($1::bigint[], $2::bigint[]) AS t(id, at)
                     WHERE s.id = t.id AND s.last_seen_at < t.at",
                )
                .await?;
            client.execute(&stmt, &[&ids, &ats]).await?;
            Ok(pending.len())
        }
        .await;
        if written.is_err() {
            for (id, at) in pending {
                self.touch_later(id, at);
            }
        }
        written
    }

    pub async fn delete_session_by_hash(&self, token_hash: [u8; 32]) -> Result<()> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id")
            .await?;
        if let Some(row) = client.query_opt(&stmt, &[&&token_hash[..]]).await? {
            self.inner.cache.forget_user(row.get(0));
        }
        Ok(())
    }

    /// Deletes one session, only if it belongs to `user_id`. Returns whether it did.
    pub async fn delete_user_session(&self, user_id: i64, session_id: i64) -> Result<bool> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM sessions WHERE id = $1 AND user_id = $2",
                &[&session_id, &user_id],
            )
            .await?
            == 1;
        if deleted {
            self.inner.cache.forget_user(user_id);
        }
        Ok(deleted)
    }

    pub async fn delete_other_sessions(&self, user_id: i64, keep_id: i64) -> Result<usize> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM sessions WHERE user_id = $1 AND id <> $2",
                &[&user_id, &keep_id],
            )
            .await?;
        if n > 0 {
            self.inner.cache.forget_user(user_id);
        }
        Ok(n as usize)
    }

    /// The user's sessions, newest first, live ones only.
    pub async fn sessions_of(
        &self,
        user_id: i64,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionSummary>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, created_at, last_seen_at, user_agent, ip FROM sessions
                 WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $2 - $3
                 ORDER BY created_at DESC, id DESC",
            )
            .await?;
        let rows = client.query(&stmt, &[&user_id, &now_ms, &idle_ms]).await?;
        Ok(rows
            .iter()
            .map(|r| SessionSummary {
                id: r.get(0),
                created_ms: r.get(1),
                last_seen_ms: r.get(2),
                user_agent: r.get(3),
                ip: r.get(4),
            })
            .collect())
    }

    /// Deletes sessions past their absolute or idle limit. Returns how many.
    pub async fn purge_expired_sessions(&self, now_ms: i64, idle_ms: i64) -> Result<usize> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $1 - $2",
                &[&now_ms, &idle_ms],
            )
            .await?;
        if n > 0 {
            // Cached copies of these were already invalid by their times; forgetting them
            // keeps the rule simple (which users is not worth a list here).
            self.inner.cache.forget_all();
        }
        Ok(n as usize)
    }

    /// Sessions whose absolute lifetime has not ended (a count over `sessions_by_expiry`);
    /// sessions past their idle limit count until the next purge, at most a minute later.
    pub async fn count_live_sessions(&self, now_ms: i64) -> Result<i64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM sessions WHERE expires_at > $1")
            .await?;
        Ok(client.query_one(&stmt, &[&now_ms]).await?.get(0))
    }
}

fn open_params<'a>(s: &'a NewSession, hash: &'a &'a [u8]) -> [&'a (dyn ToSql + Sync); 7] {
    [
        hash,
        &s.user_id,
        &s.now_ms,
        &s.expires_ms,
        &s.user_agent,
        &s.ip,
        &s.password_changed_ms,
    ]
}
