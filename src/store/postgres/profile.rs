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
    pub async fn set_full_name(
        &self,
        user_id: i64,
        full_name: Option<FullName>,
        now_ms: i64,
    ) -> Result<bool> {
        Err(super::not_yet("set_full_name"))
    }

    pub async fn request_email_change(
        &self,
        change: EmailChange,
    ) -> Result<std::result::Result<(), Taken>> {
        Err(super::not_yet("request_email_change"))
    }

    pub async fn set_email_unverified(
        &self,
        user_id: i64,
        email: Email,
        now_ms: i64,
    ) -> Result<std::result::Result<(), Taken>> {
        Err(super::not_yet("set_email_unverified"))
    }

    pub async fn lapse_pending_emails(&self, now_ms: i64, ttl_ms: i64) -> Result<usize> {
        Err(super::not_yet("lapse_pending_emails"))
    }
}
