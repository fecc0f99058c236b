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
    pub async fn create_token(&self, token: NewToken) -> Result<()> {
        Err(super::not_yet("create_token"))
    }

    pub async fn create_token_with_mail(
        &self,
        token: NewToken,
        mail: TokenMail,
    ) -> Result<TokenIssued> {
        Err(super::not_yet("create_token_with_mail"))
    }

    pub async fn find_login(&self, login: String) -> Result<Option<LoginMatch>> {
        Err(super::not_yet("find_login"))
    }

    pub async fn find_token(
        &self,
        hash: &[u8; 32],
        purpose: Purpose,
        now_ms: i64,
    ) -> Result<Option<TokenUser>> {
        Err(super::not_yet("find_token"))
    }

    pub async fn reset_password_with_token(
        &self,
        hash: [u8; 32],
        new_hash: String,
        now_ms: i64,
        notice: Option<(NewMail, OutboxLimits)>,
    ) -> Result<Option<TokenUser>> {
        Err(super::not_yet("reset_password_with_token"))
    }

    pub async fn create_user_verifying(
        &self,
        username: &crate::domain::Username,
        email: Option<&crate::domain::Email>,
        full_name: Option<&crate::domain::FullName>,
        password_hash: &str,
        now_ms: i64,
        verify: Option<VerifyLink>,
    ) -> Result<std::result::Result<User, Taken>> {
        Err(super::not_yet("create_user_verifying"))
    }

    pub async fn confirm_email(&self, hash: [u8; 32], now_ms: i64) -> Result<Option<Confirmed>> {
        Err(super::not_yet("confirm_email"))
    }
}
