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
    pub async fn add_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        Err(super::not_yet("add_group"))
    }

    pub async fn remove_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        Err(super::not_yet("remove_group"))
    }

    pub async fn groups_of(&self, user_id: i64) -> Result<Vec<GroupName>> {
        Err(super::not_yet("groups_of"))
    }
}
