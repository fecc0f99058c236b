//! `gatehouse session …`: list, revoke by public id, purge expired.

use super::{Result, audit_admin, clean, existing_store, refused, username, wait};
use crate::cli::{Config, SessionCommand};
use crate::clock::{format_ms, now_ms};

pub fn run(config: &Config, command: SessionCommand) -> Result<()> {
    let store = existing_store(config)?;
    let idle = config.session_idle.as_millis() as i64;
    match command {
        SessionCommand::List { user } => {
            let user = user.as_deref().map(username).transpose()?;
            let name = user.as_ref().map(|u| u.as_str());
            audit_admin(&store, "admin.session.list", "ok", name, None, None);
            println!("id\tusername\tcreated\tlast_seen\texpires\taddress\tuser_agent");
            for s in wait(store.list_sessions(user.as_ref(), now_ms(), idle))? {
                // Idle expiry comes first when the user is away.
                let expires = s.expires_ms.min(s.last_seen_ms + idle);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.username,
                    format_ms(s.created_ms),
                    format_ms(s.last_seen_ms),
                    format_ms(expires),
                    s.ip.as_deref().unwrap_or("-"),
                    clean(s.user_agent.as_deref().unwrap_or("-")),
                );
            }
            Ok(())
        }
        SessionCommand::Revoke { id } => match wait(store.revoke_session(id))? {
            Some((user_id, name)) => {
                audit_admin(
                    &store,
                    "admin.session.revoke",
                    "ok",
                    Some(&name),
                    Some(user_id),
                    Some(format!("session {id}")),
                );
                eprintln!("revoked session {id} of {name}");
                Ok(())
            }
            None => {
                audit_admin(
                    &store,
                    "admin.session.revoke",
                    "refused",
                    None,
                    None,
                    Some(format!("no session {id}")),
                );
                refused(format!("no session {id}"))
            }
        },
        SessionCommand::PurgeExpired => {
            let n = wait(store.purge_expired_sessions(now_ms(), idle))?;
            audit_admin(
                &store,
                "admin.session.purge_expired",
                "ok",
                None,
                None,
                Some(format!("{n} deleted")),
            );
            eprintln!("deleted {n} expired sessions");
            Ok(())
        }
    }
}
