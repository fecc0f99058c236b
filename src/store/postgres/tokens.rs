//! SQL of one-time link tokens on PostgreSQL, as `sqlite/tokens.rs`: `tokens` rows hold
//! SHA-256 of the token, never the token.
//!
//! Several instances write at once, so what SQLite's single writer gave for free is explicit:
//! issuing a user's token of a purpose holds an advisory lock on (purpose, user), so one link
//! supersedes the other and the hourly budget counts every request; consuming a link locks its
//! user's row and then the token's row (the order every write to a user and their tokens
//! takes), so of two instances consuming one link the second waits and then finds it gone.

use deadpool_postgres::{GenericClient, Transaction};

use super::PgStore;
use super::outbox::{self, enqueue};
use super::users::insert_user;
use crate::domain::{Email, FullName, Username};
use crate::security::token::Purpose;
use crate::store::tokens::{
    Confirmed, LoginMatch, NewToken, TokenIssued, TokenMail, TokenUser, VerifyLink,
};
use crate::store::{Enqueued, NewMail, OutboxLimits, Result, Taken, User};

/// The live token of `$1` for purpose `$2` at time `$3`, and its (active) user.
macro_rules! live_sql {
    () => {
        "SELECT u.id, u.username, t.email, t.expires_at, u.email,
                u.email_verified_at IS NOT NULL
           FROM tokens t JOIN users u ON u.id = t.user_id
          WHERE t.hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3
            AND u.active"
    };
}

fn token_user(r: &tokio_postgres::Row) -> TokenUser {
    TokenUser {
        user_id: r.get(0),
        username: r.get(1),
        email: r.get(2),
        expires_ms: r.get(3),
        account_email: r.get(4),
        account_email_verified: r.get(5),
    }
}

/// The live token of `hash` and its user, on any connection or transaction.
async fn live(
    c: &impl GenericClient,
    hash: &[u8; 32],
    purpose: Purpose,
    now_ms: i64,
) -> Result<Option<TokenUser>> {
    let stmt = c.prepare_cached(live_sql!()).await?;
    let row = c
        .query_opt(&stmt, &[&&hash[..], &purpose.as_str(), &now_ms])
        .await?;
    Ok(row.as_ref().map(token_user))
}

/// [`live`] for consuming: locks the user's row, then the token's, until `tx` ends. A token a
/// concurrent transaction is consuming is waited for, and then no longer live.
async fn take_live(
    tx: &Transaction<'_>,
    hash: &[u8; 32],
    purpose: Purpose,
    now_ms: i64,
) -> Result<Option<TokenUser>> {
    let stmt = tx
        .prepare_cached(
            "SELECT 1 FROM users WHERE id = (SELECT user_id FROM tokens WHERE hash = $1)
             FOR NO KEY UPDATE",
        )
        .await?;
    tx.query_opt(&stmt, &[&&hash[..]]).await?;
    let stmt = tx
        .prepare_cached(concat!(live_sql!(), " FOR UPDATE OF t"))
        .await?;
    let row = tx
        .query_opt(&stmt, &[&&hash[..], &purpose.as_str(), &now_ms])
        .await?;
    Ok(row.as_ref().map(token_user))
}

/// The advisory lock that serialises issuing tokens of `purpose` to `user_id`.
async fn lock_issuing(tx: &Transaction<'_>, purpose: Purpose, user_id: i64) -> Result<()> {
    outbox::lock(
        tx,
        &format!("gatehouse:token:{}:{}", purpose.as_str(), user_id),
    )
    .await
}

/// Replaces the user's tokens of the purpose with `t` (and sweeps expired ones).
async fn insert_token(tx: &Transaction<'_>, t: &NewToken) -> Result<()> {
    lock_issuing(tx, t.purpose, t.user_id).await?;
    let stmt = tx
        .prepare_cached("DELETE FROM tokens WHERE user_id = $1 AND purpose = $2")
        .await?;
    tx.execute(&stmt, &[&t.user_id, &t.purpose.as_str()])
        .await?;
    // Rows another transaction holds are left for a later sweep rather than waited for.
    let stmt = tx
        .prepare_cached(
            "DELETE FROM tokens WHERE hash IN
                (SELECT hash FROM tokens WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)",
        )
        .await?;
    tx.execute(&stmt, &[&t.now_ms]).await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO tokens (hash, user_id, purpose, email, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &&t.hash[..],
            &t.user_id,
            &t.purpose.as_str(),
            &t.email,
            &t.now_ms,
            &t.expires_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Stores a verification link for `email` of user `user_id` and queues its mail.
pub(super) async fn insert_verify_link(
    tx: &Transaction<'_>,
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
    )
    .await?;
    enqueue(tx, &v.mail, now_ms, &v.limits).await?;
    Ok(())
}

impl PgStore {
    pub async fn create_token(&self, token: NewToken) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        insert_token(&tx, &token).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_token_with_mail(
        &self,
        token: NewToken,
        mail: TokenMail,
    ) -> Result<TokenIssued> {
        let t = &token;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Held from the budget's count to the commit, so concurrent requests count one by one.
        lock_issuing(&tx, t.purpose, t.user_id).await?;
        if let Some(budget) = mail.per_hour {
            // The per-account budget lives beside the per-address one, under its own key.
            let key = format!("{}:{}", t.purpose.as_str(), t.user_id);
            if outbox::recent(&tx, &key, t.now_ms).await? >= budget {
                return Ok(TokenIssued::OverBudget);
            }
            tx.execute(
                "INSERT INTO mail_rate (recipient, at) VALUES ($1, $2)",
                &[&key, &t.now_ms],
            )
            .await?;
        }
        insert_token(&tx, t).await?;
        let queued = enqueue(&tx, &mail.mail, t.now_ms, &mail.limits).await?;
        // A link whose mail the outbox dropped must not supersede the last one mailed: nothing
        // is written.
        if queued == Enqueued::Queued {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(TokenIssued::Issued(queued))
    }

    pub async fn find_login(&self, login: String) -> Result<Option<LoginMatch>> {
        // Usernames are stored lower-case ASCII; addresses compare by their key.
        let username = login.to_ascii_lowercase();
        let key = crate::domain::email_key(&login);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, username, email, email_verified_at IS NOT NULL FROM users
                  WHERE active AND (username = $1 OR email_key = $2) LIMIT 1",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&username, &key]).await?;
        Ok(row.map(|r| LoginMatch {
            user_id: r.get(0),
            username: r.get(1),
            email: r.get(2),
            email_verified: r.get(3),
        }))
    }

    pub async fn find_token(
        &self,
        hash: &[u8; 32],
        purpose: Purpose,
        now_ms: i64,
    ) -> Result<Option<TokenUser>> {
        let client = self.client().await?;
        live(&client, hash, purpose, now_ms).await
    }

    pub async fn reset_password_with_token(
        &self,
        hash: [u8; 32],
        new_hash: String,
        now_ms: i64,
        notice: Option<(NewMail, OutboxLimits)>,
    ) -> Result<Option<TokenUser>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(user) = take_live(&tx, &hash, Purpose::Reset, now_ms).await? else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE tokens SET used_at = $2 WHERE hash = $1",
            &[&&hash[..], &now_ms],
        )
        .await?;
        // The trigger `password_change_kills_reset_links` then deletes every reset link of the
        // user, this one included: a second use finds nothing.
        tx.execute(
            "UPDATE users SET password_hash = $2, updated_at = $3,
                    password_changed_at = greatest($3, password_changed_at + 1),
                    unlocked_at = $3
              WHERE id = $1",
            &[&user.user_id, &new_hash, &now_ms],
        )
        .await?;
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user.user_id])
            .await?;
        if let Some((mail, limits)) = &notice {
            enqueue(&tx, mail, now_ms, limits).await?;
        }
        tx.commit().await?;
        self.inner.cache.forget_user(user.user_id);
        Ok(Some(user))
    }

    /// Creates an active user and, with an email and `verify`, the link that confirms the
    /// address and its mail, in one transaction. Uniqueness and races as
    /// [`PgStore::create_user`] (the same [`insert_user`]): the username (also against retired
    /// ones) first, then the email by its key.
    pub async fn create_user_verifying(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
        verify: Option<VerifyLink>,
    ) -> Result<std::result::Result<User, Taken>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = match insert_user(&tx, username, email, full_name, password_hash, now_ms).await? {
            Ok(id) => id,
            Err(taken) => return Ok(Err(taken)),
        };
        if let (Some(v), Some(email)) = (&verify, email) {
            insert_verify_link(&tx, id, email.as_str(), v, now_ms).await?;
        }
        tx.commit().await?;
        Ok(Ok(User {
            id,
            username: username.as_str().to_owned(),
            email: email.map(|e| e.as_str().to_owned()),
            full_name: full_name.map(|f| f.as_str().to_owned()),
            created_ms: now_ms,
        }))
    }

    pub async fn confirm_email(&self, hash: [u8; 32], now_ms: i64) -> Result<Option<Confirmed>> {
        let mut client = self.client().await?;
        let mut tx = client.transaction().await?;
        let Some(user) = take_live(&tx, &hash, Purpose::Verify, now_ms).await? else {
            return Ok(None);
        };
        let Some(email) = user.email.clone() else {
            return Ok(None);
        };
        // Confirmed only if still the account's address or its pending one: a link for an
        // address the user has since moved away from opens nothing.
        let current = tx
            .query_one(
                "SELECT email, pending_email FROM users WHERE id = $1",
                &[&user.user_id],
            )
            .await?;
        let same = |a: Option<String>| a.is_some_and(|a| a.eq_ignore_ascii_case(&email));
        if !same(current.get(0)) && !same(current.get(1)) {
            return Ok(None);
        }
        let key = crate::domain::email_key(&email);
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email_key = $1 AND id <> $2)",
                &[&key, &user.user_id],
            )
            .await?
            .get(0);
        tx.execute("DELETE FROM tokens WHERE hash = $1", &[&&hash[..]])
            .await?;
        let moved = !taken
            && super::profile::unless_taken(
                &mut tx,
                "UPDATE users SET email = $2, email_key = $3, email_verified_at = $4,
                        updated_at = $4, pending_email = NULL, pending_email_at = NULL
                  WHERE id = $1",
                &[&user.user_id, &email, &key, &now_ms],
            )
            .await?;
        tx.commit().await?;
        if !moved {
            return Ok(Some(Confirmed::Taken));
        }
        self.inner.cache.forget_user(user.user_id);
        Ok(Some(Confirmed::Email {
            user_id: user.user_id,
            username: user.username,
            email,
        }))
    }
}
