//! One-time link tokens in the storage interface (docs/behaviour.md §11): created by the
//! password-reset and verification flows, looked up by a link's GET, consumed by its POST.

use super::{Enqueued, NewMail, OutboxLimits, Result, Store};
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

/// The mail that goes with a new token (the link itself), queued in the token's transaction.
#[derive(Clone, Debug)]
pub struct TokenMail {
    pub mail: NewMail,
    pub limits: OutboxLimits,
    /// At most this many tokens of the purpose for the user within an hour: past it, no token
    /// and no mail (the last link mailed stays good). `None`: no budget.
    pub per_hour: Option<i64>,
}

/// An email verification link made before its user exists (at sign-up): the token's hash,
/// its expiry and its mail, stored with the new user.
#[derive(Clone, Debug)]
pub struct VerifyLink {
    pub hash: [u8; 32],
    pub expires_ms: i64,
    pub mail: NewMail,
    pub limits: OutboxLimits,
}

/// What confirming an address did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The account's address is now `email`, confirmed.
    Email {
        user_id: i64,
        username: String,
        email: String,
    },
    /// Another account took the address meanwhile: nothing changed.
    Taken,
}

/// What [`Store::create_token_with_mail`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenIssued {
    /// The mail queued and the token stored; or, when the outbox's bounds dropped the mail
    /// (see the value), nothing written.
    Issued(Enqueued),
    /// The user's hourly budget for the purpose is spent: nothing written.
    OverBudget,
}

/// The active account a typed login (username or email) names, for a reset request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginMatch {
    pub user_id: i64,
    pub username: String,
    pub email: Option<String>,
    /// Whether `email` is confirmed (only then may a reset link go to it).
    pub email_verified: bool,
}

/// A live token and the user it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUser {
    pub user_id: i64,
    pub username: String,
    /// The address a verification link confirms.
    pub email: Option<String>,
    pub expires_ms: i64,
    /// The account's address now, and whether it is confirmed (where notices may go).
    pub account_email: Option<String>,
    pub account_email_verified: bool,
}

impl Store {
    /// Stores a token, superseding (deleting) the user's earlier tokens of the same purpose:
    /// one live link per user and purpose.
    pub async fn create_token(&self, token: NewToken) -> Result<()> {
        backend!(self, s => s.blocking(move |s| s.create_token(&token)).await, p => p.create_token(token).await)
    }

    /// [`Store::create_token`] and its mail in one transaction: both or neither (a mail the
    /// outbox's bounds drop leaves no token either, so the last link mailed stays good).
    pub async fn create_token_with_mail(
        &self,
        token: NewToken,
        mail: TokenMail,
    ) -> Result<TokenIssued> {
        backend!(self, s => s.blocking(move |s| s.create_token_with_mail(&token, &mail)).await, p => p.create_token_with_mail(token, mail).await)
    }

    /// The active user whose username or email is `login`, ASCII case ignored. Runs on the
    /// store's pool: its caller (a reset request's background work) must not hold up a worker.
    pub async fn find_login(&self, login: String) -> Result<Option<LoginMatch>> {
        backend!(self, s => s.blocking(move |s| s.find_login(&login)).await, p => p.find_login(login).await)
    }

    /// The user a token opens, if it is unused, unexpired and its user active.
    pub async fn find_token(
        &self,
        hash: &[u8; 32],
        purpose: Purpose,
        now_ms: i64,
    ) -> Result<Option<TokenUser>> {
        backend!(self, s => s.find_token(hash, purpose, now_ms), p => p.find_token(hash, purpose, now_ms).await)
    }

    /// Consumes a live reset token and, in the same transaction, sets the new hash, ends every
    /// session, forgives the fail-lock and (by the schema's trigger) kills every other reset
    /// link. `None`: the token was not live (used, superseded, expired, killed).
    pub async fn reset_password_with_token(
        &self,
        hash: [u8; 32],
        new_hash: String,
        now_ms: i64,
        notice: Option<(NewMail, OutboxLimits)>,
    ) -> Result<Option<TokenUser>> {
        backend!(self, s => s
            .blocking(move |s| s.reset_password_with_token(&hash, &new_hash, now_ms, notice.as_ref()))
            .await, p => p.reset_password_with_token(hash, new_hash, now_ms, notice).await)
    }
}

impl Store {
    /// Creates the user and, with an email, the link that confirms it and its mail, in one
    /// transaction.
    pub async fn create_user_verifying(
        &self,
        username: &crate::domain::Username,
        email: Option<&crate::domain::Email>,
        full_name: Option<&crate::domain::FullName>,
        password_hash: &str,
        now_ms: i64,
        verify: Option<VerifyLink>,
    ) -> Result<std::result::Result<super::User, super::Taken>> {
        let (u, e, f) = (username.clone(), email.cloned(), full_name.cloned());
        let hash = password_hash.to_owned();
        backend!(self, s => s
            .blocking(move |s| {
                s.create_user_verifying(&u, e.as_ref(), f.as_ref(), &hash, now_ms, verify.as_ref())
            })
            .await, p => p.create_user_verifying(username, email, full_name, password_hash, now_ms, verify).await)
    }

    /// Consumes a live verification link: its address becomes the account's, confirmed (a
    /// pending new address replaces the old one). `None`: the link opens nothing.
    pub async fn confirm_email(&self, hash: [u8; 32], now_ms: i64) -> Result<Option<Confirmed>> {
        backend!(self, s => s.blocking(move |s| s.confirm_email(&hash, now_ms)).await, p => p.confirm_email(hash, now_ms).await)
    }
}
