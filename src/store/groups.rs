//! User groups in the storage interface: the admin commands change them, and forward-auth
//! (docs/operations.md, "Groups") reads a signed-in user's groups.

use super::{GroupChange, Result, Store};
use crate::domain::{GroupName, Username};

impl Store {
    /// Puts the user in the group; adding twice is fine (`changed: false`). `None`: no such user.
    pub async fn add_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        backend!(self, s => s.add_group(username, group), p => p.add_group(username, group).await)
    }

    /// Takes the user out of the group (`changed: false` when they were not in it). `None`: no
    /// such user.
    pub async fn remove_group(
        &self,
        username: &Username,
        group: &GroupName,
    ) -> Result<Option<GroupChange>> {
        backend!(self, s => s.remove_group(username, group), p => p.remove_group(username, group).await)
    }

    /// The user's groups, sorted by name.
    pub async fn groups_of(&self, user_id: i64) -> Result<Vec<GroupName>> {
        backend!(self, s => s.groups_of(user_id), p => p.groups_of(user_id).await)
    }
}
