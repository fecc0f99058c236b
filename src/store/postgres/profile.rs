//! SQL of the user's own details on PostgreSQL, as `sqlite/profile.rs`: full name and pending
//! email changes. Every write of `users.email` writes `email_key` with it; the unique key is
//! what settles two accounts taking one address at the same moment ([`unless_taken`]).

use deadpool_postgres::Transaction;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::outbox::enqueue;
use crate::domain::{Email, FullName};
use crate::store::profile::EmailChange;
use crate::store::{Result, Taken};

/// Runs `sql` (an update that sets `users.email_key`) in a savepoint of `tx`; `false` when it
/// met another account's key. The checks before it read only what was committed, so an
/// account confirming the same address concurrently is caught here, by the unique index,
/// instead of failing the whole transaction.
pub(super) async fn unless_taken(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<bool> {
    let sp = tx.savepoint("email").await?;
    match sp.execute(sql, params).await {
        Ok(_) => {
            sp.commit().await?;
            Ok(true)
        }
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            sp.rollback().await?;
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether an account other than `user_id` has `email` (by its key).
async fn taken_by_other(tx: &Transaction<'_>, email: &Email, user_id: i64) -> Result<bool> {
    let stmt = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM users WHERE email_key = $1 AND id <> $2)")
        .await?;
    Ok(tx.query_one(&stmt, &[&email.key(), &user_id]).await?.get(0))
}

impl PgStore {
    pub async fn set_full_name(
        &self,
        user_id: i64,
        full_name: Option<FullName>,
        now_ms: i64,
    ) -> Result<bool> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE users SET full_name = $2, updated_at = $3 WHERE id = $1",
                &[&user_id, &full_name.as_ref().map(FullName::as_str), &now_ms],
            )
            .await?
            == 1;
        self.inner.cache.forget_user(user_id);
        Ok(changed)
    }

    pub async fn request_email_change(
        &self,
        change: EmailChange,
    ) -> Result<std::result::Result<(), Taken>> {
        let ch = &change;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if taken_by_other(&tx, &ch.email, ch.user_id).await? {
            return Ok(Err(Taken::Email));
        }
        tx.execute(
            "UPDATE users SET pending_email = $2, pending_email_at = $3, updated_at = $3
              WHERE id = $1",
            &[&ch.user_id, &ch.email.as_str(), &ch.now_ms],
        )
        .await?;
        if let Some(v) = &ch.verify {
            super::tokens::insert_verify_link(&tx, ch.user_id, ch.email.as_str(), v, ch.now_ms)
                .await?;
        }
        if let Some((mail, limits)) = &ch.notice {
            enqueue(&tx, mail, ch.now_ms, limits).await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn set_email_unverified(
        &self,
        user_id: i64,
        email: Email,
        now_ms: i64,
    ) -> Result<std::result::Result<(), Taken>> {
        let mut client = self.client().await?;
        let mut tx = client.transaction().await?;
        if taken_by_other(&tx, &email, user_id).await? {
            return Ok(Err(Taken::Email));
        }
        if !unless_taken(
            &mut tx,
            "UPDATE users SET email = $2, email_key = $3, email_verified_at = NULL,
                    pending_email = NULL, pending_email_at = NULL, updated_at = $4
              WHERE id = $1",
            &[&user_id, &email.as_str(), &email.key(), &now_ms],
        )
        .await?
        {
            return Ok(Err(Taken::Email));
        }
        tx.execute(
            "DELETE FROM tokens WHERE user_id = $1 AND purpose = 'verify'",
            &[&user_id],
        )
        .await?;
        tx.commit().await?;
        self.inner.cache.forget_user(user_id);
        Ok(Ok(()))
    }

    pub async fn lapse_pending_emails(&self, now_ms: i64, ttl_ms: i64) -> Result<usize> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE users SET pending_email = NULL, pending_email_at = NULL
                  WHERE pending_email IS NOT NULL AND pending_email_at <= $1",
                &[&(now_ms - ttl_ms)],
            )
            .await? as usize)
    }
}
