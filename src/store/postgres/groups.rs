//! User groups on PostgreSQL (docs/operations.md, "Groups"): membership rows in `user_groups`,
//! which go with their user (`ON DELETE CASCADE`); mirrors the SQLite store's `groups.rs`.
//! Each change is one statement that finds the user and changes the membership together.

use tokio_postgres::error::SqlState;

use super::PgStore;
use crate::domain::{GroupName, Username};
use crate::store::{GroupChange, Result, StoreError};

impl PgStore {
    /// Puts the user in the group (already in it: unchanged). `None`: no such user.
    pub async fn add_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        self.change_group(
            "WITH u AS (SELECT id FROM users WHERE username = $1),
                  added AS (INSERT INTO user_groups (user_id, name) SELECT id, $2 FROM u
                            ON CONFLICT (user_id, name) DO NOTHING RETURNING 1)
             SELECT u.id, EXISTS (SELECT 1 FROM added) FROM u",
            username,
            group,
        )
        .await
    }

    /// Takes the user out of the group (not in it: unchanged). `None`: no such user.
    pub async fn remove_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        self.change_group(
            "WITH u AS (SELECT id FROM users WHERE username = $1),
                  removed AS (DELETE FROM user_groups
                              WHERE user_id = (SELECT id FROM u) AND name = $2 RETURNING 1)
             SELECT u.id, EXISTS (SELECT 1 FROM removed) FROM u",
            username,
            group,
        )
        .await
    }

    async fn change_group(
        &self,
        sql: &str,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        let client = self.client().await?;
        let row = match client
            .query_opt(sql, &[&username.as_str(), &group.as_str()])
            .await
        {
            Ok(row) => row,
            // The user was deleted between finding them and adding the row: no such user.
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let change = row.map(|r| GroupChange {
            user_id: r.get(0),
            changed: r.get(1),
        });
        if let Some(GroupChange {
            user_id,
            changed: true,
        }) = change
        {
            self.inner.cache.forget_user(user_id);
        }
        Ok(change)
    }

    /// The user's groups, sorted by name (empty for no such user).
    pub async fn groups_of(&self, user_id: i64) -> Result<Vec<GroupName>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT name FROM user_groups WHERE user_id = $1 ORDER BY name COLLATE \"C\"",
            )
            .await?;
        let rows = client.query(&stmt, &[&user_id]).await?;
        // Byte order (COLLATE "C"), as SQLite sorts: the locale's order skips `-` and `_`.
        // Only `GroupName`s are ever written; a row that is not one was edited by hand.
        rows.iter()
            .map(|r| {
                let n: &str = r.get(0);
                GroupName::parse(n).map_err(|m| {
                    StoreError::Backend(format!("stored group name {n:?} is invalid: {m}"))
                })
            })
            .collect()
    }
}
