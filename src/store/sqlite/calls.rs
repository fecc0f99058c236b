//! Where each call of the storage interface runs on SQLite. Writes go to the store's own
//! bounded pool ([`SqliteStore::blocking`]): they wait on the single writer connection and must
//! not stall an async worker. The point reads made on every page (session, credentials, the
//! `/account` lists) stay inline on the caller, as today: a cached or indexed read costs less
//! than the hop to a pool thread (docs/performance.md), so they have no wrapper here and
//! [`crate::store::Store`] calls them directly.

use super::SqliteStore;
use crate::domain::{Email, FullName, Username};
use crate::store::{
    AuditEvent, Enqueued, NewMail, NewSession, OutboxLimits, QueuedMail, Result, Taken, User,
};

impl SqliteStore {
    pub(crate) async fn healthy_async(&self) -> bool {
        self.blocking(|s| Ok(s.healthy())).await.unwrap_or(false)
    }

    pub(crate) async fn taken_async(
        &self,
        username: &Username,
        email: Option<&Email>,
    ) -> Result<Option<Taken>> {
        let (u, e) = (username.clone(), email.cloned());
        self.blocking(move |s| s.taken(&u, e.as_ref())).await
    }

    pub(crate) async fn create_user_async(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<User, Taken>> {
        let (u, e, f) = (username.clone(), email.cloned(), full_name.cloned());
        let hash = password_hash.to_owned();
        self.blocking(move |s| s.create_user(&u, e.as_ref(), f.as_ref(), &hash, now_ms))
            .await
    }

    pub(crate) async fn rehash_async(
        &self,
        user_id: i64,
        old: String,
        new: String,
        now_ms: i64,
    ) -> Result<bool> {
        self.blocking(move |s| s.rehash(user_id, &old, &new, now_ms))
            .await
    }

    pub(crate) async fn change_password_async(
        &self,
        old_changed_ms: i64,
        new_hash: String,
        session: NewSession,
    ) -> Result<Option<i64>> {
        self.blocking(move |s| s.change_password(old_changed_ms, &new_hash, &session))
            .await
    }

    /// The session and its sign-in event in one pool trip; a lost audit row is logged, never
    /// a failed sign-in (as before the interface).
    pub(crate) async fn open_session_async(
        &self,
        session: NewSession,
        signed_in: AuditEvent,
    ) -> Result<Option<i64>> {
        self.blocking(move |s| {
            let created = s.create_session(&session)?;
            if created.is_some()
                && let Err(e) = s.write_audit(std::slice::from_ref(&signed_in), &[])
            {
                tracing::warn!("audit event lost: {e}");
            }
            Ok(created)
        })
        .await
    }

    pub(crate) async fn flush_touches_async(&self) -> Result<usize> {
        self.blocking(|s| s.flush_touches()).await
    }

    pub(crate) async fn delete_session_by_hash_async(&self, token_hash: [u8; 32]) -> Result<()> {
        self.blocking(move |s| s.delete_session_by_hash(&token_hash))
            .await
    }

    pub(crate) async fn delete_user_session_async(
        &self,
        user_id: i64,
        session_id: i64,
    ) -> Result<bool> {
        self.blocking(move |s| s.delete_user_session(user_id, session_id))
            .await
    }

    pub(crate) async fn delete_other_sessions_async(
        &self,
        user_id: i64,
        keep_id: i64,
    ) -> Result<usize> {
        self.blocking(move |s| s.delete_other_sessions(user_id, keep_id))
            .await
    }

    pub(crate) async fn purge_expired_sessions_async(
        &self,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<usize> {
        self.blocking(move |s| s.purge_expired_sessions(now_ms, idle_ms))
            .await
    }

    pub(crate) async fn count_live_sessions_async(&self, now_ms: i64) -> Result<i64> {
        self.blocking(move |s| s.count_live_sessions(now_ms)).await
    }

    pub(crate) async fn purge_audit_async(&self, before_ms: i64) -> Result<usize> {
        self.blocking(move |s| s.purge_audit(before_ms)).await
    }

    pub(crate) async fn enqueue_mail_async(
        &self,
        mail: NewMail,
        now_ms: i64,
        limits: OutboxLimits,
    ) -> Result<Enqueued> {
        self.blocking(move |s| s.enqueue_mail(&mail, now_ms, &limits))
            .await
    }

    pub(crate) async fn claim_mail_async(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMail>> {
        self.blocking(move |s| s.claim_mail(now_ms, lease_ms, limit))
            .await
    }

    pub(crate) async fn release_mail_claims_async(&self) -> Result<usize> {
        self.blocking(|s| s.release_mail_claims()).await
    }

    pub(crate) async fn delete_mail_async(&self, id: i64) -> Result<bool> {
        self.blocking(move |s| s.delete_mail(id)).await
    }

    pub(crate) async fn retry_mail_at_async(&self, id: i64, next_try_ms: i64) -> Result<bool> {
        self.blocking(move |s| s.retry_mail_at(id, next_try_ms))
            .await
    }

    pub(crate) async fn purge_outbox_async(&self, now_ms: i64) -> Result<usize> {
        self.blocking(move |s| s.purge_outbox(now_ms)).await
    }

    pub(crate) async fn outbox_depth_async(&self) -> Result<i64> {
        self.blocking(|s| s.outbox_depth()).await
    }

    pub(crate) async fn next_mail_due_async(&self, now_ms: i64) -> Result<Option<i64>> {
        self.blocking(move |s| s.next_mail_due(now_ms)).await
    }
}
