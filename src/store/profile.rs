//! The user's own details in the storage interface (docs/behaviour.md §11.3): the full name,
//! and a move to a new email address, which stays pending until confirmed.

use super::tokens::VerifyLink;
use super::{NewMail, OutboxLimits, Result, Store, Taken};
use crate::domain::{Email, FullName};

/// A request to move the account to a new address: its confirmation link and mail, and the
/// notice to the old address.
#[derive(Clone, Debug)]
pub struct EmailChange {
    pub user_id: i64,
    pub email: Email,
    pub verify: Option<VerifyLink>,
    pub notice: Option<(NewMail, OutboxLimits)>,
    pub now_ms: i64,
}

impl Store {
    /// Sets (or, with `None`, clears) the user's full name.
    pub async fn set_full_name(
        &self,
        user_id: i64,
        full_name: Option<FullName>,
        now_ms: i64,
    ) -> Result<bool> {
        backend!(self, s => s
            .blocking(move |s| s.set_full_name(user_id, full_name.as_ref(), now_ms))
            .await, p => p.set_full_name(user_id, full_name, now_ms).await)
    }

    /// Records `email` as the user's pending address, stores its confirmation link and queues
    /// its mail and the old address's notice, in one transaction; `Err(Taken)` when another
    /// account has the address (in any case).
    pub async fn request_email_change(
        &self,
        change: EmailChange,
    ) -> Result<std::result::Result<(), Taken>> {
        backend!(self, s => s.blocking(move |s| s.request_email_change(&change)).await, p => p.request_email_change(change).await)
    }

    /// Sets the address at once, unconfirmed (a site without mail can confirm nothing).
    pub async fn set_email_unverified(
        &self,
        user_id: i64,
        email: Email,
        now_ms: i64,
    ) -> Result<std::result::Result<(), Taken>> {
        backend!(self, s => s
            .blocking(move |s| s.set_email_unverified(user_id, &email, now_ms))
            .await, p => p.set_email_unverified(user_id, email, now_ms).await)
    }

    /// Forgets pending addresses not confirmed within `ttl_ms`.
    pub async fn lapse_pending_emails(&self, now_ms: i64, ttl_ms: i64) -> Result<usize> {
        backend!(self, s => s.blocking(move |s| s.lapse_pending_emails(now_ms, ttl_ms)).await, p => p.lapse_pending_emails(now_ms, ttl_ms).await)
    }
}
