//! Storage as an interface (docs/design.md, "Storage interface"): the records the flows see,
//! [`StoreError`], and [`Store`], an enum over backends chosen when the database is opened.
//! Nothing here names SQLite; the backend in [`sqlite`] owns its connections, its migrations,
//! its thread pool and its fast paths. A second backend adds a variant and its module, and the
//! flows that call these methods do not change.
//!
//! Every method a request or a background job calls is `async` and fallible, as a network
//! database needs; whether it runs inline or on a pool is the backend's business.

use std::path::Path;

use crate::domain::{Email, FullName, Username};

pub mod postgres;
mod records;
pub mod sqlite;

pub use records::{
    AuditEvent, AuditFilter, AuditRow, CheckReport, Credentials, Enqueued, GroupChange,
    ImportOutcome, NewMail, NewSession, OutboxLimits, QueuedMail, SessionListing, SessionRecord,
    SessionSummary, Taken, User, UserDetails,
};

/// Why storage could not answer. Every variant is a refusal: a caller never reads one as "no
/// such session" or "nothing to forgive" (the flows propagate it, and the web layer answers
/// 503 or 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is busy")]
    Busy,
    /// A database server that cannot be reached (or is shutting down): 503 until it returns.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Backend(String),
    #[error("database file {path}: {message}")]
    Open { path: String, message: String },
    #[error("the database was created by a newer Gatehouse (schema version {0})")]
    TooNew(i64),
    #[error("{0} exists (a file or a symbolic link); choose a new path")]
    Exists(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The storage the rest of the crate uses. Cloning is cheap (shared handles).
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Delegates a call to the backend (one arm per backend).
macro_rules! backend {
    ($self:ident, $s:ident => $call:expr, $p:ident => $pcall:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($p) => $pcall,
        }
    };
}

impl Store {
    /// Opens (creating when missing) and upgrades the database at `database`: a SQLite file,
    /// or a `postgres://` URL with the default pool settings.
    pub fn open(database: &Path) -> Result<Self> {
        Self::open_with(database, &postgres::PgOptions::default())
    }

    /// [`Store::open`] with PostgreSQL's pool settings.
    pub fn open_with(database: &Path, pg: &postgres::PgOptions) -> Result<Self> {
        match database.to_str() {
            Some(url) if postgres::is_url(url) => {
                postgres::PgStore::open(url, pg).map(Store::Postgres)
            }
            _ => sqlite::SqliteStore::open(database).map(Store::Sqlite),
        }
    }

    /// Which backend, for messages: "SQLite" or "PostgreSQL".
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "SQLite",
            Store::Postgres(_) => "PostgreSQL",
        }
    }

    /// Whether several servers may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Records `fingerprint` as the database's secret key when it has none yet; returns the
    /// one stored (equal to `fingerprint` unless another key was used before).
    pub async fn claim_key(&self, fingerprint: &str) -> Result<String> {
        backend!(self, s => s.claim_key(fingerprint), p => p.claim_key(fingerprint).await)
    }

    /// Called on each server worker's thread as it starts: on PostgreSQL the worker gets its
    /// own share of the connections, driven by its own runtime (`postgres::workers`).
    pub fn adopt_worker(&self) {
        if let Store::Postgres(p) = self {
            p.adopt_worker();
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn healthy(&self) -> bool {
        backend!(self, s => s.healthy_async().await, p => p.healthy().await)
    }

    /// Which of username / email is already taken, username first.
    pub async fn taken(&self, username: &Username, email: Option<&Email>) -> Result<Option<Taken>> {
        backend!(self, s => s.taken_async(username, email).await, p => p.taken(username, email).await)
    }

    /// Creates an active user, or names the unique field that is taken. Two concurrent
    /// creations of one name give one user and one [`Taken::Username`].
    pub async fn create_user(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<User, Taken>> {
        backend!(self, s => s.create_user_async(username, email, full_name, password_hash, now_ms).await, p => p.create_user(username, email, full_name, password_hash, now_ms).await)
    }

    /// What a password check for `username` needs; `None`: no such user.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        backend!(self, s => s.credentials(username), p => p.credentials(username).await)
    }

    pub async fn credentials_by_id(&self, user_id: i64) -> Result<Option<Credentials>> {
        backend!(self, s => s.credentials_by_id(user_id), p => p.credentials_by_id(user_id).await)
    }

    /// Replaces the hash only if it is still `old`. Returns whether it did.
    pub async fn rehash(
        &self,
        user_id: i64,
        old: String,
        new: String,
        now_ms: i64,
    ) -> Result<bool> {
        backend!(self, s => s.rehash_async(user_id, old, new, now_ms).await, p => p.rehash(user_id, old, new, now_ms).await)
    }

    /// Changes the password if unchanged since `old_changed_ms`, ends every session of the
    /// user and opens `session`, atomically. `None`: changed meanwhile (or user disabled).
    pub async fn change_password(
        &self,
        old_changed_ms: i64,
        new_hash: String,
        session: NewSession,
    ) -> Result<Option<i64>> {
        backend!(self, s => s.change_password_async(old_changed_ms, new_hash, session).await, p => p.change_password(old_changed_ms, new_hash, session).await)
    }

    /// Opens a session (see [`NewSession`]) and, when it was opened, records `signed_in` in
    /// the audit trail in the same trip, so `/account` shows it at once. `None`: the password
    /// changed since it was verified, or the user was disabled.
    pub async fn open_session(
        &self,
        session: NewSession,
        signed_in: AuditEvent,
    ) -> Result<Option<i64>> {
        backend!(self, s => s.open_session_async(session, signed_in).await, p => p.open_session(session, signed_in).await)
    }

    /// The session with this token hash, joined with its user. On every page: backends answer
    /// it from their own cache when they can.
    pub async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        backend!(self, s => s.session(token_hash), p => p.session(token_hash).await)
    }

    /// Notes that session `id` was used at `now_ms`, written later by [`Store::flush_touches`].
    pub fn touch_later(&self, id: i64, now_ms: i64) {
        backend!(self, s => s.touch_later(id, now_ms), p => p.touch_later(id, now_ms))
    }

    /// Writes the pending "last seen" times. Returns how many.
    pub async fn flush_touches(&self) -> Result<usize> {
        backend!(self, s => s.flush_touches_async().await, p => p.flush_touches().await)
    }

    pub async fn delete_session_by_hash(&self, token_hash: [u8; 32]) -> Result<()> {
        backend!(self, s => s.delete_session_by_hash_async(token_hash).await, p => p.delete_session_by_hash(token_hash).await)
    }

    /// Deletes one session, only if it belongs to `user_id`. Returns whether it did.
    pub async fn delete_user_session(&self, user_id: i64, session_id: i64) -> Result<bool> {
        backend!(self, s => s.delete_user_session_async(user_id, session_id).await, p => p.delete_user_session(user_id, session_id).await)
    }

    pub async fn delete_other_sessions(&self, user_id: i64, keep_id: i64) -> Result<usize> {
        backend!(self, s => s.delete_other_sessions_async(user_id, keep_id).await, p => p.delete_other_sessions(user_id, keep_id).await)
    }

    /// The user's live sessions, newest first.
    pub async fn sessions_of(
        &self,
        user_id: i64,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionSummary>> {
        backend!(self, s => s.sessions_of(user_id, now_ms, idle_ms), p => p.sessions_of(user_id, now_ms, idle_ms).await)
    }

    /// Deletes sessions past their absolute or idle limit. Returns how many.
    pub async fn purge_expired_sessions(&self, now_ms: i64, idle_ms: i64) -> Result<usize> {
        backend!(self, s => s.purge_expired_sessions_async(now_ms, idle_ms).await, p => p.purge_expired_sessions(now_ms, idle_ms).await)
    }

    /// Sessions whose absolute lifetime has not ended.
    pub async fn count_live_sessions(&self, now_ms: i64) -> Result<i64> {
        backend!(self, s => s.count_live_sessions_async(now_ms).await, p => p.count_live_sessions(now_ms).await)
    }

    /// Writes new audit events and adds attempts to open episodes, in one transaction.
    /// Returns the new rows' ids. Called from the audit writer's own thread and the CLI.
    pub async fn write_audit(
        &self,
        new: &[AuditEvent],
        bumps: &[(i64, i64, i64)],
    ) -> Result<Vec<i64>> {
        backend!(self, s => s.write_audit(new, bumps), p => p.write_audit(new, bumps).await)
    }

    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        backend!(self, s => s.audit_events(filter), p => p.audit_events(filter).await)
    }

    pub async fn recent_sign_ins(&self, user_id: i64, limit: usize) -> Result<Vec<AuditRow>> {
        backend!(self, s => s.recent_sign_ins(user_id, limit), p => p.recent_sign_ins(user_id, limit).await)
    }

    pub async fn failed_sign_ins_since(&self, user_id: i64, since_ms: i64) -> Result<i64> {
        backend!(self, s => s.failed_sign_ins_since(user_id, since_ms), p => p.failed_sign_ins_since(user_id, since_ms).await)
    }

    /// Queues a message in a transaction of its own (`gatehouse mail test --queue`). A flow
    /// whose mail goes with a change queues it inside that change's transaction instead
    /// (`sqlite::outbox::enqueue`), then calls `Mailer::wake`.
    pub async fn enqueue_mail(
        &self,
        mail: NewMail,
        now_ms: i64,
        limits: OutboxLimits,
    ) -> Result<Enqueued> {
        backend!(self, s => s.enqueue_mail_async(mail, now_ms, limits).await, p => p.enqueue_mail(mail, now_ms, limits).await)
    }

    /// Claims up to `limit` due messages for `lease_ms`, counting an attempt on each.
    pub async fn claim_mail(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMail>> {
        backend!(self, s => s.claim_mail_async(now_ms, lease_ms, limit).await, p => p.claim_mail(now_ms, lease_ms, limit).await)
    }

    /// At the sender's start: on SQLite (one server per database) forgets every claim, which
    /// belonged to a process that is gone; on PostgreSQL releases nothing, since other
    /// instances hold live claims (a lapsed lease makes a message claimable by itself).
    pub async fn release_mail_claims(&self) -> Result<usize> {
        backend!(self, s => s.release_mail_claims_async().await, p => p.release_mail_claims().await)
    }

    /// Deletes a message that was delivered or refused for good.
    pub async fn delete_mail(&self, id: i64) -> Result<bool> {
        backend!(self, s => s.delete_mail_async(id).await, p => p.delete_mail(id).await)
    }

    /// Puts a claimed message back for another attempt at `next_try_ms`.
    pub async fn retry_mail_at(&self, id: i64, next_try_ms: i64) -> Result<bool> {
        backend!(self, s => s.retry_mail_at_async(id, next_try_ms).await, p => p.retry_mail_at(id, next_try_ms).await)
    }

    /// Deletes expired messages and old per-recipient rate records; returns how many
    /// messages expired unsent.
    pub async fn purge_outbox(&self, now_ms: i64) -> Result<usize> {
        backend!(self, s => s.purge_outbox_async(now_ms).await, p => p.purge_outbox(now_ms).await)
    }

    /// Messages waiting in the outbox.
    pub async fn outbox_depth(&self) -> Result<i64> {
        backend!(self, s => s.outbox_depth_async().await, p => p.outbox_depth().await)
    }

    /// When the next message falls due, if any waits.
    pub async fn next_mail_due(&self, now_ms: i64) -> Result<Option<i64>> {
        backend!(self, s => s.next_mail_due_async(now_ms).await, p => p.next_mail_due(now_ms).await)
    }

    /// Deletes audit events older than `before_ms`. Returns how many.
    pub async fn purge_audit(&self, before_ms: i64) -> Result<usize> {
        backend!(self, s => s.purge_audit_async(before_ms).await, p => p.purge_audit(before_ms).await)
    }
}

mod admin;
mod groups;
pub mod keys;
pub mod passkeys;
pub mod profile;
pub mod tokens;
pub mod two_step;

#[cfg(test)]
mod passkeys_tests;
#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
