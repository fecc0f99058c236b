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
    pub async fn list_users(&self) -> Result<Vec<UserDetails>> {
        Err(super::not_yet("list_users"))
    }

    pub async fn delete_user_by_id(&self, user_id: i64) -> Result<bool> {
        Err(super::not_yet("delete_user_by_id"))
    }

    pub async fn user_details_by_id(&self, user_id: i64) -> Result<Option<UserDetails>> {
        Err(super::not_yet("user_details_by_id"))
    }

    pub async fn user_details(&self, username: &Username) -> Result<Option<UserDetails>> {
        Err(super::not_yet("user_details"))
    }

    pub async fn set_active(
        &self,
        username: &Username,
        active: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        Err(super::not_yet("set_active"))
    }

    pub async fn delete_user(&self, username: &Username) -> Result<Option<i64>> {
        Err(super::not_yet("delete_user"))
    }

    pub async fn unlock_user(&self, username: &Username, now_ms: i64) -> Result<Option<i64>> {
        Err(super::not_yet("unlock_user"))
    }

    pub async fn set_password(
        &self,
        username: &Username,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        Err(super::not_yet("set_password"))
    }

    pub async fn list_sessions(
        &self,
        username: Option<&Username>,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionListing>> {
        Err(super::not_yet("list_sessions"))
    }

    pub async fn revoke_session(&self, session_id: i64) -> Result<Option<(i64, String)>> {
        Err(super::not_yet("revoke_session"))
    }

    pub async fn import_users(
        &self,
        users: &[(Username, String)],
        now_ms: i64,
    ) -> Result<Vec<ImportOutcome>> {
        Err(super::not_yet("import_users"))
    }

    pub async fn count_users_outside(&self, prefix: &str) -> Result<i64> {
        Err(super::not_yet("count_users_outside"))
    }

    pub async fn bench_fill(
        &self,
        prefix: &str,
        range: std::ops::Range<u64>,
        session_id: impl Fn(u64) -> Option<crate::security::session::SessionId>,
        hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        Err(super::not_yet("bench_fill"))
    }

    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        Err(super::not_yet("backup_to"))
    }
}
