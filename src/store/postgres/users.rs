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
    pub async fn taken(&self, username: &Username, email: Option<&Email>) -> Result<Option<Taken>> {
        Err(super::not_yet("taken"))
    }

    pub async fn create_user(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<User, Taken>> {
        Err(super::not_yet("create_user"))
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        Err(super::not_yet("credentials"))
    }

    pub async fn credentials_by_id(&self, user_id: i64) -> Result<Option<Credentials>> {
        Err(super::not_yet("credentials_by_id"))
    }

    pub async fn rehash(
        &self,
        user_id: i64,
        old: String,
        new: String,
        now_ms: i64,
    ) -> Result<bool> {
        Err(super::not_yet("rehash"))
    }
}
