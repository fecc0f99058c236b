#![allow(unused_variables, unused_imports)]
//! STUB

use super::PgStore;
use crate::domain::{Email, FullName, GroupName, Username};
use crate::security::token::Purpose;
use crate::store::profile::EmailChange;
use crate::store::tokens::{
    Confirmed, LoginMatch, NewToken, TokenIssued, TokenMail, TokenUser, VerifyLink,
};
use crate::store::*;

impl PgStore {
    pub async fn change_password(
        &self,
        old_changed_ms: i64,
        new_hash: String,
        session: NewSession,
    ) -> Result<Option<i64>> {
        Err(super::not_yet("change_password"))
    }

    pub async fn open_session(
        &self,
        session: NewSession,
        signed_in: AuditEvent,
    ) -> Result<Option<i64>> {
        Err(super::not_yet("open_session"))
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
        Ok(found)
    }

    async fn session_row(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT s.id, s.created_at, s.last_seen_at, s.expires_at,
                        u.id, u.username, u.email, u.full_name, u.created_at, u.active,
                        u.password_changed_at,
                        (SELECT string_agg(name, ',' ORDER BY name)
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
        let mut touches = self.inner.touches.lock().unwrap_or_else(|e| e.into_inner());
        let t = touches.entry(id).or_insert(now_ms);
        *t = (*t).max(now_ms);
    }

    pub async fn flush_touches(&self) -> Result<usize> {
        Err(super::not_yet("flush_touches"))
    }

    pub async fn delete_session_by_hash(&self, token_hash: [u8; 32]) -> Result<()> {
        Err(super::not_yet("delete_session_by_hash"))
    }

    pub async fn delete_user_session(&self, user_id: i64, session_id: i64) -> Result<bool> {
        Err(super::not_yet("delete_user_session"))
    }

    pub async fn delete_other_sessions(&self, user_id: i64, keep_id: i64) -> Result<usize> {
        Err(super::not_yet("delete_other_sessions"))
    }

    pub async fn sessions_of(
        &self,
        user_id: i64,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionSummary>> {
        Err(super::not_yet("sessions_of"))
    }

    pub async fn purge_expired_sessions(&self, now_ms: i64, idle_ms: i64) -> Result<usize> {
        Err(super::not_yet("purge_expired_sessions"))
    }

    pub async fn count_live_sessions(&self, now_ms: i64) -> Result<i64> {
        Err(super::not_yet("count_live_sessions"))
    }
}
