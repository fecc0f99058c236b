//! SQL of one-time link tokens: `tokens` rows hold SHA-256 of the token, never the token.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::security::token::Purpose;
use crate::store::tokens::{
    Confirmed, LoginMatch, NewToken, TokenIssued, TokenMail, TokenUser, VerifyLink,
};
use crate::store::{Enqueued, NewMail, OutboxLimits, Result};

/// The live token of `hash` and its user, inside any connection or transaction.
fn live(
    c: &rusqlite::Connection,
    hash: &[u8; 32],
    purpose: Purpose,
    now_ms: i64,
) -> Result<Option<TokenUser>> {
    Ok(c.prepare_cached(
        "SELECT u.id, u.username, t.email, t.expires_at, u.email, u.email_verified_at IS NOT NULL
           FROM tokens t JOIN users u ON u.id = t.user_id
          WHERE t.hash = ?1 AND t.purpose = ?2 AND t.used_at IS NULL AND t.expires_at > ?3
            AND u.active = 1",
    )?
    .query_row(params![&hash[..], purpose.as_str(), now_ms], |r| {
        Ok(TokenUser {
            user_id: r.get(0)?,
            username: r.get(1)?,
            email: r.get(2)?,
            expires_ms: r.get(3)?,
            account_email: r.get(4)?,
            account_email_verified: r.get(5)?,
        })
    })
    .optional()?)
}

/// Replaces the user's tokens of the purpose with `t` (and sweeps expired ones).
fn insert_token(tx: &rusqlite::Connection, t: &NewToken) -> Result<()> {
    tx.execute(
        "DELETE FROM tokens WHERE user_id = ?1 AND purpose = ?2",
        params![t.user_id, t.purpose.as_str()],
    )?;
    tx.execute(
        "DELETE FROM tokens WHERE expires_at <= ?1",
        params![t.now_ms],
    )?;
    tx.execute(
        "INSERT INTO tokens (hash, user_id, purpose, email, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            &t.hash[..],
            t.user_id,
            t.purpose.as_str(),
            t.email,
            t.now_ms,
            t.expires_ms
        ],
    )?;
    Ok(())
}

/// Stores a verification link for `email` of user `user_id` and queues its mail.
pub(super) fn insert_verify_link(
    tx: &rusqlite::Connection,
    user_id: i64,
    email: &str,
    v: &VerifyLink,
    now_ms: i64,
) -> Result<()> {
    insert_token(
        tx,
        &NewToken {
            hash: v.hash,
            user_id,
            purpose: Purpose::Verify,
            email: Some(email.to_owned()),
            now_ms,
            expires_ms: v.expires_ms,
        },
    )?;
    super::outbox::enqueue(tx, &v.mail, now_ms, &v.limits)?;
    Ok(())
}

impl SqliteStore {
    pub fn confirm_email(&self, hash: &[u8; 32], now_ms: i64) -> Result<Option<Confirmed>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(user) = live(&tx, hash, Purpose::Verify, now_ms)? else {
                return Ok(None);
            };
            let Some(email) = user.email.clone() else {
                return Ok(None);
            };
            // Confirmed only if still the account's address or its pending one: a link for an
            // address the user has since moved away from opens nothing.
            let current: (Option<String>, Option<String>) = tx.query_row(
                "SELECT email, pending_email FROM users WHERE id = ?1",
                [user.user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let same =
                |a: &Option<String>| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&email));
            if !same(&current.0) && !same(&current.1) {
                return Ok(None);
            }
            let taken: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1 AND id <> ?2)",
                params![email, user.user_id],
                |r| r.get(0),
            )?;
            tx.execute("DELETE FROM tokens WHERE hash = ?1", [&hash[..]])?;
            if taken {
                tx.commit()?;
                return Ok(Some(Confirmed::Taken));
            }
            tx.execute(
                "UPDATE users SET email = ?2, email_verified_at = ?3, updated_at = ?3,
                        pending_email = NULL, pending_email_at = NULL
                  WHERE id = ?1",
                params![user.user_id, email, now_ms],
            )?;
            tx.commit()?;
            Ok(Some(Confirmed::Email {
                user_id: user.user_id,
                username: user.username,
                email,
            }))
        })
    }

    pub fn create_token_with_mail(&self, t: &NewToken, m: &TokenMail) -> Result<TokenIssued> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(budget) = m.per_hour {
                // The per-account budget lives beside the per-address one, under its own key.
                let key = format!("{}:{}", t.purpose.as_str(), t.user_id);
                let recent: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM mail_rate WHERE recipient = ?1 AND at > ?2",
                    )?
                    .query_row(
                        params![key, t.now_ms - super::outbox::RATE_WINDOW_MS],
                        |r| r.get(0),
                    )?;
                if recent >= budget {
                    return Ok(TokenIssued::OverBudget);
                }
                tx.execute(
                    "INSERT INTO mail_rate (recipient, at) VALUES (?1, ?2)",
                    params![key, t.now_ms],
                )?;
            }
            insert_token(&tx, t)?;
            let queued = super::outbox::enqueue(&tx, &m.mail, t.now_ms, &m.limits)?;
            // A link whose mail the outbox dropped must not supersede the last one mailed:
            // nothing is written (the transaction rolls back on drop).
            if queued == Enqueued::Queued {
                tx.commit()?;
            }
            Ok(TokenIssued::Issued(queued))
        })
    }

    pub fn create_token(&self, t: &NewToken) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            insert_token(&tx, t)?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn find_login(&self, login: &str) -> Result<Option<LoginMatch>> {
        // Usernames are stored lower-case ASCII; `email` is `COLLATE NOCASE` (ASCII case).
        let username = login.to_ascii_lowercase();
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, username, email, email_verified_at IS NOT NULL FROM users
                  WHERE active = 1 AND (username = ?1 OR email = ?2) LIMIT 1",
            )?
            .query_row(params![username, login], |r| {
                Ok(LoginMatch {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    email: r.get(2)?,
                    email_verified: r.get(3)?,
                })
            })
            .optional()?)
        })
    }

    pub fn find_token(
        &self,
        hash: &[u8; 32],
        purpose: Purpose,
        now_ms: i64,
    ) -> Result<Option<TokenUser>> {
        self.read(|c| live(c, hash, purpose, now_ms))
    }

    pub fn reset_password_with_token(
        &self,
        hash: &[u8; 32],
        new_hash: &str,
        now_ms: i64,
        notice: Option<&(NewMail, OutboxLimits)>,
    ) -> Result<Option<TokenUser>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Some(user) = live(&tx, hash, Purpose::Reset, now_ms)? else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE tokens SET used_at = ?2 WHERE hash = ?1",
                params![&hash[..], now_ms],
            )?;
            // The trigger `password_change_kills_reset_links` then deletes every reset link of
            // the user, this one included: a second use finds nothing.
            tx.execute(
                "UPDATE users SET password_hash = ?2, updated_at = ?3,
                        password_changed_at = max(?3, password_changed_at + 1), unlocked_at = ?3
                  WHERE id = ?1",
                params![user.user_id, new_hash, now_ms],
            )?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user.user_id])?;
            if let Some((mail, limits)) = notice {
                super::outbox::enqueue(&tx, mail, now_ms, limits)?;
            }
            tx.commit()?;
            Ok(Some(user))
        })
    }
}
