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
    pub async fn write_audit(
        &self,
        new: &[AuditEvent],
        bumps: &[(i64, i64, i64)],
    ) -> Result<Vec<i64>> {
        Err(super::not_yet("write_audit"))
    }

    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        Err(super::not_yet("audit_events"))
    }

    pub async fn recent_sign_ins(&self, user_id: i64, limit: usize) -> Result<Vec<AuditRow>> {
        Err(super::not_yet("recent_sign_ins"))
    }

    pub async fn failed_sign_ins_since(&self, user_id: i64, since_ms: i64) -> Result<i64> {
        Err(super::not_yet("failed_sign_ins_since"))
    }

    pub async fn purge_audit(&self, before_ms: i64) -> Result<usize> {
        Err(super::not_yet("purge_audit"))
    }
}
