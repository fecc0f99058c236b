//! `gatehouse user group add|remove NAME GROUP`: a user's groups, which forward-auth's
//! `?group=` checks (docs/operations.md, "Groups"). Both are idempotent: adding a member again
//! or removing a non-member is done (exit 0) and says so.

use super::{Result, audit_admin, existing_store, refused, username, wait};
use crate::cli::{Config, GroupCommand};
use crate::domain::GroupName;
use crate::store::Store;

pub fn run(config: &Config, command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Add { username, group } => change(config, &username, &group, true),
        GroupCommand::Remove { username, group } => change(config, &username, &group, false),
    }
}

/// A typed group name, or a refusal naming the rule.
fn group_name(typed: &str) -> Result<GroupName> {
    GroupName::parse(typed)
        .or_else(|m| refused(format!("{typed:?} is not a valid group name: {m}")))
}

fn change(config: &Config, typed_user: &str, typed_group: &str, add: bool) -> Result<()> {
    let user = username(typed_user)?;
    let group = group_name(typed_group)?;
    let store: Store = existing_store(config)?;
    let (kind, outcome) = if add {
        (
            "admin.user.group.add",
            wait(store.add_group(&user, &group))?,
        )
    } else {
        (
            "admin.user.group.remove",
            wait(store.remove_group(&user, &group))?,
        )
    };
    let Some(outcome) = outcome else {
        let why = Some(format!("no such user; group {group}"));
        audit_admin(&store, kind, "refused", Some(user.as_str()), None, why);
        return refused(format!("no user {}", user.as_str()));
    };
    let (detail, said) = match (add, outcome.changed) {
        (true, true) => ("added", format!("added {user} to group {group}")),
        (true, false) => (
            "already a member",
            format!("{user} was already in group {group}"),
        ),
        (false, true) => ("removed", format!("removed {user} from group {group}")),
        (false, false) => ("not a member", format!("{user} was not in group {group}")),
    };
    let detail = Some(format!("group {group}: {detail}"));
    audit_admin(
        &store,
        kind,
        "ok",
        Some(user.as_str()),
        Some(outcome.user_id),
        detail,
    );
    eprintln!("{said}");
    Ok(())
}
