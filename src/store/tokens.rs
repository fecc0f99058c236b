//! One-time link tokens in the storage interface (docs/behaviour.md §11): created by the
//! password-reset and verification flows, looked up by a link's GET, consumed by its POST.

use super::{Result, Store};
use crate::security::token::Purpose;

/// A token to store (its SHA-256 only).
#[derive(Clone, Debug)]
pub struct NewToken {
    pub hash: [u8; 32],
    pub user_id: i64,
    pub purpose: Purpose,
    /// For a verification link: the address it confirms.
    pub email: Option<String>,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// A live token and the user it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUser {
    pub user_id: i64,
    pub username: String,
    /// The address a verification link confirms.
    pub email: Option<String>,
    pub expires_ms: i64,
}

impl Store {
    /// Stores a token, superseding (deleting) the user's earlier tokens of the same purpose:
    /// one live link per user and purpose.
    pub async fn create_token(&self, token: NewToken) -> Result<()> {
        backend!(self, s => s.blocking(move |s| s.create_token(&token)).await)
    }

    /// The user a token opens, if it is unused, unexpired and its user active.
    pub async fn find_token(
        &self,
        hash: &[u8; 32],
        purpose: Purpose,
        now_ms: i64,
    ) -> Result<Option<TokenUser>> {
        backend!(self, s => s.find_token(hash, purpose, now_ms))
    }

    /// Consumes a live reset token and, in the same transaction, sets the new hash, ends every
    /// session, forgives the fail-lock and (by the schema's trigger) kills every other reset
    /// link. `None`: the token was not live (used, superseded, expired, killed).
    pub async fn reset_password_with_token(
        &self,
        hash: [u8; 32],
        new_hash: String,
        now_ms: i64,
    ) -> Result<Option<TokenUser>> {
        backend!(self, s => s
            .blocking(move |s| s.reset_password_with_token(&hash, &new_hash, now_ms))
            .await)
    }
}
