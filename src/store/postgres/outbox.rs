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
    pub async fn enqueue_mail(
        &self,
        mail: NewMail,
        now_ms: i64,
        limits: OutboxLimits,
    ) -> Result<Enqueued> {
        Err(super::not_yet("enqueue_mail"))
    }

    pub async fn claim_mail(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMail>> {
        Err(super::not_yet("claim_mail"))
    }

    pub async fn release_mail_claims(&self) -> Result<usize> {
        Err(super::not_yet("release_mail_claims"))
    }

    pub async fn delete_mail(&self, id: i64) -> Result<bool> {
        Err(super::not_yet("delete_mail"))
    }

    pub async fn retry_mail_at(&self, id: i64, next_try_ms: i64) -> Result<bool> {
        Err(super::not_yet("retry_mail_at"))
    }

    pub async fn purge_outbox(&self, now_ms: i64) -> Result<usize> {
        Err(super::not_yet("purge_outbox"))
    }

    pub async fn outbox_depth(&self) -> Result<i64> {
        Err(super::not_yet("outbox_depth"))
    }

    pub async fn next_mail_due(&self, now_ms: i64) -> Result<Option<i64>> {
        Err(super::not_yet("next_mail_due"))
    }
}
