//! SQL of the user's own details: full name and pending email changes.

use rusqlite::params;

use super::SqliteStore;
use crate::domain::FullName;
use crate::store::profile::EmailChange;
use crate::store::{Result, Taken};

impl SqliteStore {
    pub fn set_full_name(
        &self,
        user_id: i64,
        full_name: Option<&FullName>,
        now_ms: i64,
    ) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE users SET full_name = ?2, updated_at = ?3 WHERE id = ?1",
                params![user_id, full_name.map(FullName::as_str), now_ms],
            )? == 1)
        })
    }

    pub fn request_email_change(&self, ch: &EmailChange) -> Result<std::result::Result<(), Taken>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let taken: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1 AND id <> ?2)",
                params![ch.email.as_str(), ch.user_id],
                |r| r.get(0),
            )?;
            if taken {
                return Ok(Err(Taken::Email));
            }
            tx.execute(
                "UPDATE users SET pending_email = ?2, pending_email_at = ?3, updated_at = ?3
                  WHERE id = ?1",
                params![ch.user_id, ch.email.as_str(), ch.now_ms],
            )?;
            if let Some(v) = &ch.verify {
                super::tokens::insert_verify_link(
                    &tx,
                    ch.user_id,
                    ch.email.as_str(),
                    v,
                    ch.now_ms,
                )?;
            }
            if let Some((mail, limits)) = &ch.notice {
                super::outbox::enqueue(&tx, mail, ch.now_ms, limits)?;
            }
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    pub fn set_email_unverified(
        &self,
        user_id: i64,
        email: &crate::domain::Email,
        now_ms: i64,
    ) -> Result<std::result::Result<(), Taken>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let taken: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1 AND id <> ?2)",
                params![email.as_str(), user_id],
                |r| r.get(0),
            )?;
            if taken {
                return Ok(Err(Taken::Email));
            }
            tx.execute(
                "UPDATE users SET email = ?2, email_verified_at = NULL, pending_email = NULL,
                        pending_email_at = NULL, updated_at = ?3
                  WHERE id = ?1",
                params![user_id, email.as_str(), now_ms],
            )?;
            tx.execute(
                "DELETE FROM tokens WHERE user_id = ?1 AND purpose = 'verify'",
                [user_id],
            )?;
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    pub fn lapse_pending_emails(&self, now_ms: i64, ttl_ms: i64) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE users SET pending_email = NULL, pending_email_at = NULL
                  WHERE pending_email IS NOT NULL AND pending_email_at <= ?1",
                [now_ms - ttl_ms],
            )?)
        })
    }
}
