//! SQL of user groups (docs/operations.md, "Groups"): membership rows in `user_groups`, which
//! go with their user (`ON DELETE CASCADE`).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::domain::{GroupName, Username};
use crate::store::{GroupChange, Result, StoreError};

impl SqliteStore {
    /// Puts the user in the group (already in it: unchanged). `None`: no such user.
    pub fn add_group(&self, username: &Username, group: &GroupName) -> Result<Option<GroupChange>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let Some(user_id) = user_id(&tx, username)? else {
                return Ok(None);
            };
            let changed = tx.execute(
                "INSERT INTO user_groups (user_id, name) VALUES (?1, ?2)
                 ON CONFLICT (user_id, name) DO NOTHING",
                params![user_id, group.as_str()],
            )? == 1;
            tx.commit()?;
            Ok(Some(GroupChange { user_id, changed }))
        })
    }

    /// Takes the user out of the group (not in it: unchanged). `None`: no such user.
    pub fn remove_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let Some(user_id) = user_id(&tx, username)? else {
                return Ok(None);
            };
            let changed = tx.execute(
                "DELETE FROM user_groups WHERE user_id = ?1 AND name = ?2",
                params![user_id, group.as_str()],
            )? == 1;
            tx.commit()?;
            Ok(Some(GroupChange { user_id, changed }))
        })
    }

    /// The user's groups, sorted by name (empty for no such user).
    pub fn groups_of(&self, user_id: i64) -> Result<Vec<GroupName>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT name FROM user_groups WHERE user_id = ?1 ORDER BY name")?;
            let names = stmt
                .query_map([user_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // Only `GroupName`s are ever written; a row that is not one was edited by hand.
            names
                .iter()
                .map(|n| {
                    GroupName::parse(n).map_err(|m| {
                        StoreError::Backend(format!("stored group name {n:?} is invalid: {m}"))
                    })
                })
                .collect()
        })
    }
}

fn user_id(c: &rusqlite::Connection, username: &Username) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT id FROM users WHERE username = ?1",
        [username.as_str()],
        |r| r.get(0),
    )
    .optional()
}
