//! `gatehouse user …`: add, list, show, disable, enable, delete, unlock, set-password.

use super::{Result, audit_admin, clean, existing_store, read_password, refused, username, wait};
use crate::cli::{Config, UserCommand};
use crate::clock::{format_ms, now_ms};
use crate::domain::{Email, FullName, PlainPassword, Username};
use crate::security::digest::PasswordDigest;
use crate::security::password::Kdf;
use crate::store::Store;

pub fn run(config: &Config, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add {
            username: typed,
            email,
            full_name,
        } => add(config, &typed, email.as_deref(), full_name.as_deref()),
        UserCommand::List => list(config),
        UserCommand::Show { username: typed } => show(config, &typed),
        UserCommand::Disable { username: typed } => set_active(config, &typed, false),
        UserCommand::Enable { username: typed } => set_active(config, &typed, true),
        UserCommand::Delete { username: typed } => delete(config, &typed),
        UserCommand::Unlock { username: typed } => unlock(config, &typed),
        UserCommand::SetPassword { username: typed } => set_password(config, &typed),
    }
}

/// The site's own path: the password's rules, the docs/behaviour.md §2 digest, then Argon2id.
fn hash_new_password(config: &Config, user: &Username) -> Result<String> {
    let typed = read_password(user.as_str())?;
    PlainPassword::parse(&typed).or_else(|m| refused(format!("password refused: {m}")))?;
    let digest = PasswordDigest::compute(user.as_str(), &typed);
    Ok(Kdf::new(config.kdf_params())?.hash(&digest)?)
}

fn add(config: &Config, typed: &str, email: Option<&str>, full_name: Option<&str>) -> Result<()> {
    let user = username(typed)?;
    let email = Email::parse_optional(email.unwrap_or(""))
        .or_else(|m| refused(format!("email refused: {m}")))?;
    let full_name = FullName::parse_optional(full_name.unwrap_or(""))
        .or_else(|m| refused(format!("full name refused: {m}")))?;
    let store = Store::open(&config.database)?;
    if let Some(taken) = wait(store.taken(&user, email.as_ref()))? {
        audit_admin(
            &store,
            "admin.user.add",
            "refused",
            Some(user.as_str()),
            None,
            Some(taken.to_string()),
        );
        return refused(format!("{}: {taken}", user.as_str()));
    }
    let hash = hash_new_password(config, &user)?;
    match wait(store.create_user(&user, email.as_ref(), full_name.as_ref(), &hash, now_ms()))? {
        Ok(created) => {
            audit_admin(
                &store,
                "admin.user.add",
                "ok",
                Some(&created.username),
                Some(created.id),
                None,
            );
            eprintln!("created user {} (id {})", created.username, created.id);
            Ok(())
        }
        Err(taken) => {
            audit_admin(
                &store,
                "admin.user.add",
                "refused",
                Some(user.as_str()),
                None,
                Some(taken.to_string()),
            );
            refused(format!("{}: {taken}", user.as_str()))
        }
    }
}

fn list(config: &Config) -> Result<()> {
    let store = existing_store(config)?;
    audit_admin(&store, "admin.user.list", "ok", None, None, None);
    println!("id\tusername\tstatus\tsessions\tcreated\temail\tfull_name");
    for u in wait(store.list_users())? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            u.id,
            u.username,
            if u.active { "active" } else { "disabled" },
            u.sessions,
            format_ms(u.created_ms),
            u.email.as_deref().unwrap_or("-"),
            clean(u.full_name.as_deref().unwrap_or("-")),
        );
    }
    Ok(())
}

fn show(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let Some(u) = wait(store.user_details(&user))? else {
        audit_admin(
            &store,
            "admin.user.show",
            "refused",
            Some(user.as_str()),
            None,
            Some("no such user".into()),
        );
        return refused(format!("no user {}", user.as_str()));
    };
    audit_admin(
        &store,
        "admin.user.show",
        "ok",
        Some(user.as_str()),
        Some(u.id),
        None,
    );
    println!("id: {}", u.id);
    println!("username: {}", u.username);
    println!("status: {}", if u.active { "active" } else { "disabled" });
    println!("email: {}", u.email.as_deref().unwrap_or("-"));
    println!(
        "full name: {}",
        clean(u.full_name.as_deref().unwrap_or("-"))
    );
    println!("created: {}", format_ms(u.created_ms));
    println!("password changed: {}", format_ms(u.password_changed_ms));
    if u.unlocked_ms > 0 {
        println!("last unlocked: {}", format_ms(u.unlocked_ms));
    }
    let idle = config.session_idle.as_millis() as i64;
    let sessions = wait(store.list_sessions(Some(&user), now_ms(), idle))?;
    println!("sessions: {}", sessions.len());
    for s in sessions {
        println!(
            "  session {}\tsigned in {}\tlast seen {}\tfrom {}\t{}",
            s.id,
            format_ms(s.created_ms),
            format_ms(s.last_seen_ms),
            s.ip.as_deref().unwrap_or("-"),
            clean(s.user_agent.as_deref().unwrap_or("-")),
        );
    }
    let recent = wait(store.audit_events(&crate::store::AuditFilter {
        username: Some(u.username.clone()),
        limit: 10,
        ..Default::default()
    }))?;
    println!("recent events: {}", recent.len());
    for r in recent {
        println!(
            "  {}\t{}\t{}\t×{}\t{}",
            format_ms(r.at_ms),
            r.event,
            r.outcome,
            r.count,
            r.ip.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Reports (and audits) a change to one named user: `changed` is the user's id, or `None` when
/// there is no such user.
fn reported(
    store: &Store,
    kind: &'static str,
    user: &Username,
    changed: Option<i64>,
    done: &str,
) -> Result<()> {
    match changed {
        Some(id) => {
            audit_admin(store, kind, "ok", Some(user.as_str()), Some(id), None);
            eprintln!("{done} {}", user.as_str());
            Ok(())
        }
        None => {
            let why = Some("no such user".to_owned());
            audit_admin(store, kind, "refused", Some(user.as_str()), None, why);
            refused(format!("no user {}", user.as_str()))
        }
    }
}

fn set_active(config: &Config, typed: &str, active: bool) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let changed = wait(store.set_active(&user, active, now_ms()))?;
    match active {
        true => reported(&store, "admin.user.enable", &user, changed, "enabled"),
        false => reported(
            &store,
            "admin.user.disable",
            &user,
            changed,
            "disabled (and signed out)",
        ),
    }
}

fn delete(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let changed = wait(store.delete_user(&user))?;
    reported(
        &store,
        "admin.user.delete",
        &user,
        changed,
        "deleted (with their sessions)",
    )
}

fn unlock(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let changed = wait(store.unlock_user(&user, now_ms()))?;
    reported(&store, "admin.user.unlock", &user, changed, "unlocked")
}

fn set_password(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let kind = "admin.user.set_password";
    if wait(store.user_details(&user))?.is_none() {
        return reported(&store, kind, &user, None, "");
    }
    let hash = hash_new_password(config, &user)?;
    let changed = wait(store.set_password(&user, &hash, now_ms()))?;
    reported(
        &store,
        kind,
        &user,
        changed,
        "new password (sessions ended) for",
    )
}
