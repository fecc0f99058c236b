//! The admin commands' part of the storage interface: user management, session listing, bulk
//! imports and the benchmark's data. Async like the rest, so a network backend can serve
//! them; the CLI drives them on a small runtime of its own ([`crate::admin`]).

use std::path::Path;

use super::{ImportOutcome, Result, SessionListing, Store, UserDetails};
use crate::domain::Username;

impl Store {
    pub async fn list_users(&self) -> Result<Vec<UserDetails>> {
        backend!(self, s => s.list_users(), p => p.list_users().await)
    }

    /// Deletes a user (and, with them, their sessions and groups) by id; the username is
    /// retired. Whether there was such a user.
    pub async fn delete_user_by_id(&self, user_id: i64) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.delete_user_by_id(user_id)).await, p => p.delete_user_by_id(user_id).await)
    }

    pub async fn user_details_by_id(&self, user_id: i64) -> Result<Option<UserDetails>> {
        backend!(self, s => s.user_details_by_id(user_id), p => p.user_details_by_id(user_id).await)
    }

    pub async fn user_details(&self, username: &Username) -> Result<Option<UserDetails>> {
        backend!(self, s => s.user_details(username), p => p.user_details(username).await)
    }

    /// Enables or disables a user; disabling ends their sessions atomically. Returns the
    /// user's id, or `None` when there is no such user.
    pub async fn set_active(
        &self,
        username: &Username,
        active: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        backend!(self, s => s.set_active(username, active, now_ms), p => p.set_active(username, active, now_ms).await)
    }

    pub async fn delete_user(&self, username: &Username) -> Result<Option<i64>> {
        backend!(self, s => s.delete_user(username), p => p.delete_user(username).await)
    }

    /// Lifts the fail-lock: older lock records are forgiven. Returns the user's id.
    pub async fn unlock_user(&self, username: &Username, now_ms: i64) -> Result<Option<i64>> {
        backend!(self, s => s.unlock_user(username, now_ms), p => p.unlock_user(username, now_ms).await)
    }

    /// An admin's new password: also ends every session and lifts the lock.
    pub async fn set_password(
        &self,
        username: &Username,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        backend!(self, s => s.set_password(username, hash, now_ms), p => p.set_password(username, hash, now_ms).await)
    }

    /// Live sessions, optionally of one user.
    pub async fn list_sessions(
        &self,
        username: Option<&Username>,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionListing>> {
        backend!(self, s => s.list_sessions(username, now_ms, idle_ms), p => p.list_sessions(username, now_ms, idle_ms).await)
    }

    /// Deletes a session by id. Returns its user (id, name) when it existed.
    pub async fn revoke_session(&self, session_id: i64) -> Result<Option<(i64, String)>> {
        backend!(self, s => s.revoke_session(session_id), p => p.revoke_session(session_id).await)
    }

    /// Inserts users with precomputed hashes, skipping names that exist.
    pub async fn import_users(
        &self,
        users: &[(Username, String)],
        now_ms: i64,
    ) -> Result<Vec<ImportOutcome>> {
        backend!(self, s => s.import_users(users, now_ms), p => p.import_users(users, now_ms).await)
    }

    /// Users whose name does not start with `prefix` (bench-data's guard).
    pub async fn count_users_outside(&self, prefix: &str) -> Result<i64> {
        backend!(self, s => s.count_users_outside(prefix), p => p.count_users_outside(prefix).await)
    }

    /// Benchmark data: see [`super::sqlite::SqliteStore::bench_fill`].
    pub async fn bench_fill(
        &self,
        prefix: &str,
        range: std::ops::Range<u64>,
        session_id: impl Fn(u64) -> Option<crate::security::session::SessionId>,
        hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        backend!(self, s => s.bench_fill(prefix, range, session_id, hash, now_ms, expires_ms), p => p.bench_fill(prefix, range, session_id, hash, now_ms, expires_ms).await)
    }

    /// A consistent copy of the database in a new file (`gatehouse db backup`). A file-level
    /// operation of the embedded backend; a server backend has its own dump tool.
    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        backend!(self, s => s.backup_to(dest, progress), p => p.backup_to(dest, progress))
    }
}
