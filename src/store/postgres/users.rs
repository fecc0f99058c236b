//! Users on PostgreSQL: sign-up with typed uniqueness outcomes, the credentials a password
//! check reads, and the conditional rehash (mirrors the SQLite store's `mod.rs`).
//!
//! SQLite decides uniqueness under its one write lock (`BEGIN IMMEDIATE`). Here several
//! instances insert at once, so the unique indexes decide: the insert is `ON CONFLICT DO
//! NOTHING`, and a refused insert is explained by reading the table again, which then shows
//! the row that won (it waited for that row's transaction to end). The outcome is still a
//! query's answer, never a constraint's error text.

use deadpool_postgres::{GenericClient, Transaction};

use super::PgStore;
use crate::domain::{Email, FullName, Username};
use crate::store::{Credentials, Result, StoreError, Taken, User};

const TAKEN: &str = "SELECT EXISTS(SELECT 1 FROM users WHERE username = $1)
                         OR EXISTS(SELECT 1 FROM retired_usernames WHERE username = $1),
                     $2::text IS NOT NULL
                         AND EXISTS(SELECT 1 FROM users WHERE email_key = $2::text)";

const CREDENTIALS_BY_NAME: &str =
    "SELECT id, password_hash, active, password_changed_at, unlocked_at, email,
            email_verified_at IS NOT NULL,
            EXISTS (SELECT 1 FROM totp WHERE user_id = users.id AND enabled_at IS NOT NULL)
     FROM users WHERE username = $1";
const CREDENTIALS_BY_ID: &str =
    "SELECT id, password_hash, active, password_changed_at, unlocked_at, email,
            email_verified_at IS NOT NULL,
            EXISTS (SELECT 1 FROM totp WHERE user_id = users.id AND enabled_at IS NOT NULL)
     FROM users WHERE id = $1";

impl PgStore {
    /// Which of username / email is already taken, username first.
    pub async fn taken(&self, username: &Username, email: Option<&Email>) -> Result<Option<Taken>> {
        let client = self.client().await?;
        taken_in(&client, username, email).await
    }

    /// Creates an active user, or names the unique field that is taken. Two instances creating
    /// one name at once give one user and one [`Taken::Username`].
    pub async fn create_user(
        &self,
        username: &Username,
        email: Option<&Email>,
        full_name: Option<&FullName>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<User, Taken>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = match insert_user(&tx, username, email, full_name, password_hash, now_ms).await? {
            Ok(id) => id,
            Err(taken) => return Ok(Err(taken)),
        };
        tx.commit().await?;
        Ok(Ok(User {
            id,
            username: username.as_str().to_owned(),
            email: email.map(|e| e.as_str().to_owned()),
            full_name: full_name.map(|f| f.as_str().to_owned()),
            created_ms: now_ms,
        }))
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(CREDENTIALS_BY_NAME).await?;
        let row = client.query_opt(&stmt, &[&username]).await?;
        Ok(row.map(|r| credentials(&r)))
    }

    pub async fn credentials_by_id(&self, user_id: i64) -> Result<Option<Credentials>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(CREDENTIALS_BY_ID).await?;
        let row = client.query_opt(&stmt, &[&user_id]).await?;
        Ok(row.map(|r| credentials(&r)))
    }

    /// Replaces the hash only if it is still `old` (a rehash must never bring back a password
    /// that was changed meanwhile). Returns whether it did. The change time stays, so no
    /// session's validity changes (nothing to forget in the cache).
    pub async fn rehash(
        &self,
        user_id: i64,
        old: String,
        new: String,
        now_ms: i64,
    ) -> Result<bool> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE users SET password_hash = $3, updated_at = $4
                 WHERE id = $1 AND password_hash = $2",
                &[&user_id, &old, &new, &now_ms],
            )
            .await?
            == 1)
    }
}

fn credentials(r: &tokio_postgres::Row) -> Credentials {
    Credentials {
        user_id: r.get(0),
        password_hash: r.get(1),
        active: r.get(2),
        password_changed_ms: r.get(3),
        unlocked_ms: r.get(4),
        email: r.get(5),
        email_verified: r.get(6),
        two_step: r.get(7),
    }
}

/// Which of username / email has a user (or, for the name, had one), username first.
pub(super) async fn taken_in<C: GenericClient>(
    c: &C,
    username: &Username,
    email: Option<&Email>,
) -> Result<Option<Taken>> {
    let stmt = c.prepare_cached(TAKEN).await?;
    let key = email.map(Email::key);
    let row = c.query_one(&stmt, &[&username.as_str(), &key]).await?;
    Ok(if row.get(0) {
        Some(Taken::Username)
    } else if row.get(1) {
        Some(Taken::Email)
    } else {
        None
    })
}

/// Inserts an active user inside `tx` and returns its id, or names the field that is taken
/// (username first). The caller commits; on `Err(Taken)` it must not (dropping `tx` rolls
/// back). Shared with the sign-up that also issues a verification link in the same
/// transaction.
///
/// Races: a concurrent insert of the same name or address makes this one wait on the unique
/// index and then do nothing; reading again (a new snapshot under READ COMMITTED) shows the
/// winner. A concurrent deletion of a user of that name lets the insert through once it
/// commits, having retired the name in the same transaction: the check after the insert sees
/// the retired name and refuses, as SQLite's serialised check would have.
pub(super) async fn insert_user(
    tx: &Transaction<'_>,
    username: &Username,
    email: Option<&Email>,
    full_name: Option<&FullName>,
    password_hash: &str,
    now_ms: i64,
) -> Result<std::result::Result<i64, Taken>> {
    if let Some(taken) = taken_in(tx, username, email).await? {
        return Ok(Err(taken));
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO users (username, email, email_key, full_name, password_hash, active,
                                created_at, updated_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6, $6)
             ON CONFLICT DO NOTHING
             RETURNING id",
        )
        .await?;
    let inserted = tx
        .query_opt(
            &insert,
            &[
                &username.as_str(),
                &email.map(Email::as_str),
                &email.map(Email::key),
                &full_name.map(FullName::as_str),
                &password_hash,
                &now_ms,
            ],
        )
        .await?;
    let Some(row) = inserted else {
        // Another transaction committed the name or the address after our check.
        return match taken_in(tx, username, email).await? {
            Some(taken) => Ok(Err(taken)),
            // Nothing to explain the conflict: let the caller try again.
            None => Err(StoreError::Busy),
        };
    };
    let retired = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM retired_usernames WHERE username = $1)")
        .await?;
    if tx
        .query_one(&retired, &[&username.as_str()])
        .await?
        .get::<_, bool>(0)
    {
        return Ok(Err(Taken::Username));
    }
    Ok(Ok(row.get(0)))
}
