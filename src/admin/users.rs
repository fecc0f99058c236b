//! `gatehouse user …`: add, list, show, disable, enable, delete, unlock, set-password (and
//! `group`, in [`super::groups`]).

use super::{Result, audit_admin, clean, existing_store, read_password, refused, username, wait};
use crate::accounts::{
    Accounts, Client, Deps, FieldErrors, PasswordInput, Problem, ResetError, SignUpError,
    SignUpInput,
};
use crate::cli::{Config, UserCommand};
use crate::clock::{format_ms, now_ms};
use crate::domain::{Email, FullName, GroupName, Username};
use crate::security::faillock::FailLock;
use crate::security::limits::AttemptLock;
use crate::security::password::{Kdf, KdfPool};
use crate::store::{AuditEvent, Store};

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
        UserCommand::Reset2fa { username: typed } => reset_2fa(config, &typed),
        UserCommand::SetPassword { username: typed } => set_password(config, &typed),
        UserCommand::ResetLink { username: typed } => reset_link(config, &typed),
        UserCommand::Group(c) => super::groups::run(config, c),
    }
}

/// The admin commands write their own `admin.*` events; the service's are not theirs.
struct NoAudit;

impl crate::accounts::AuditSink for NoAudit {
    fn record(&self, _: AuditEvent) {}
    fn count(&self, _: &'static str, _: &'static str) {}
}

/// The site's account service as the operator drives it: the server's KDF parameters on a
/// one-thread pool of its own, in-memory locks, and no address limits.
fn accounts(config: &Config, store: &Store) -> Result<Accounts> {
    let key = crate::security::session::SessionId::generate().hash();
    Ok(Accounts::for_admin(Deps {
        store: store.clone(),
        kdf: KdfPool::new(Kdf::new(config.kdf_params())?, 1, 1),
        clock: std::sync::Arc::new(crate::clock::SystemClock),
        // Unused by the admin's use cases (no password check), but the service holds them.
        lock: std::sync::Arc::new(AttemptLock::Memory(FailLock::new(
            config.lock_attempts,
            config.lock_window,
            1,
        ))),
        device_lock: std::sync::Arc::new(AttemptLock::Memory(FailLock::new(
            config.lock_attempts,
            config.lock_window,
            1,
        ))),
        // Device tokens are never issued here: any key will do.
        key: crate::security::secret::SecretKey::from_bytes(&key).expect("32 bytes"),
        sessions: crate::security::session::SessionPolicy {
            secure: config.secure(),
            idle: config.session_idle,
            max: config.session_max,
            domain: None,
        },
        audit: std::sync::Arc::new(NoAudit),
    }))
}

/// A typed password, as the site's rules take it (no repeat: the prompt checked that).
fn plain_password(password: &str) -> PasswordInput<'_> {
    PasswordInput::Plain {
        password,
        repeat: None,
    }
}

/// Why the password was refused, from the service's field problems.
fn password_refused<T>(errors: FieldErrors) -> Result<T> {
    let why = errors
        .0
        .into_iter()
        .map(|(_, p)| match p {
            Problem::Rejected(m) => m,
            Problem::MissingPassword | Problem::MissingCurrentPassword => "empty".into(),
            Problem::PasswordsDiffer => "the passwords do not match".into(),
        })
        .next()
        .unwrap_or_default();
    refused(format!("password refused: {why}"))
}

fn add(
    config: &Config,
    typed_name: &str,
    email: Option<&str>,
    full_name: Option<&str>,
) -> Result<()> {
    let user = username(typed_name)?;
    let email_text = email.unwrap_or("");
    let full_name_text = full_name.unwrap_or("");
    let email =
        Email::parse_optional(email_text).or_else(|m| refused(format!("email refused: {m}")))?;
    FullName::parse_optional(full_name_text)
        .or_else(|m| refused(format!("full name refused: {m}")))?;
    let store = Store::open_with(&config.database, &config.pg_options())?;
    let taken_refusal = |taken: crate::store::Taken| {
        audit_admin(
            &store,
            "admin.user.add",
            "refused",
            Some(user.as_str()),
            None,
            Some(taken.to_string()),
        );
        refused(format!("{}: {taken}", user.as_str()))
    };
    // Before the prompt: a taken name should not cost the operator a password.
    if let Some(taken) = wait(store.taken(&user, email.as_ref()))? {
        return taken_refusal(taken);
    }
    let password = read_password(user.as_str())?;
    let accounts = accounts(config, &store)?;
    let input = SignUpInput {
        username: user.as_str(),
        email: email_text,
        full_name: full_name_text,
        password: plain_password(&password),
    };
    match wait(accounts.sign_up(input, &Client::default(), None)) {
        Ok(created) => {
            let created = created.user;
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
        Err(SignUpError::Taken(taken)) => taken_refusal(taken),
        Err(SignUpError::Invalid(errors)) => password_refused(errors),
        Err(SignUpError::Kdf(e)) => Err(e.into()),
        Err(SignUpError::Store(e)) => Err(e.into()),
        Err(e @ SignUpError::Refused(_)) => refused(e.to_string()),
    }
}

fn list(config: &Config) -> Result<()> {
    let store = existing_store(config)?;
    audit_admin(&store, "admin.user.list", "ok", None, None, None);
    println!("id\tusername\tstatus\tsessions\tcreated\temail\tverified\tfull_name");
    for u in wait(store.list_users())? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            u.id,
            u.username,
            if u.active { "active" } else { "disabled" },
            u.sessions,
            format_ms(u.created_ms),
            u.email.as_deref().unwrap_or("-"),
            match (&u.email, u.email_verified) {
                (None, _) => "-",
                (Some(_), true) => "yes",
                (Some(_), false) => "no",
            },
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
    println!(
        "email: {}{}",
        u.email.as_deref().unwrap_or("-"),
        match (&u.email, u.email_verified) {
            (None, _) => "",
            (Some(_), true) => " (verified)",
            (Some(_), false) => " (not verified)",
        }
    );
    if let Some(p) = &u.pending_email {
        println!("pending email: {p} (waiting for confirmation)");
    }
    println!(
        "full name: {}",
        clean(u.full_name.as_deref().unwrap_or("-"))
    );
    println!("created: {}", format_ms(u.created_ms));
    println!("password changed: {}", format_ms(u.password_changed_ms));
    if u.unlocked_ms > 0 {
        println!("last unlocked: {}", format_ms(u.unlocked_ms));
    }
    let two_step = wait(store.two_step_state(u.id))?;
    if two_step.enabled() {
        println!(
            "two-step: on (authenticator codes; {} recovery codes left)",
            two_step.recovery_left
        );
    } else {
        println!("two-step: off");
    }
    let groups = wait(store.groups_of(u.id))?;
    if groups.is_empty() {
        println!("groups: none");
    } else {
        let names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
        println!("groups: {}", names.join(", "));
    }
    let passkeys = wait(store.passkeys_of(u.id))?;
    println!("passkeys: {}", passkeys.len());
    for p in passkeys {
        println!(
            "  passkey {}\t{}\tadded {}\tlast used {}",
            p.id,
            clean(&p.name),
            format_ms(p.created_ms),
            p.last_used_ms.map_or_else(|| "never".into(), format_ms),
        );
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

/// `user reset-2fa`: every second factor of the user goes; signing in takes the password
/// alone until they set one up again.
fn reset_2fa(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let id = wait(store.user_details(&user))?.map(|u| u.id);
    if let Some(id) = id {
        wait(store.reset_second_factors(id))?;
    }
    reported(
        &store,
        "admin.user.reset-2fa",
        &user,
        id,
        "removed the second factors (authenticator codes, recovery codes, passkeys) of",
    )
}

/// Prints a reset link on standard output (the link alone, for scripts), the rest on stderr.
fn reset_link(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let kind = "admin.user.reset_link";
    let Some(details) = wait(store.user_details(&user))? else {
        return reported(&store, kind, &user, None, "");
    };
    let accounts = accounts(config, &store)?;
    let token = wait(accounts.issue_reset_link(details.id, config.reset_ttl))?;
    let base = config
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_default();
    if base.is_empty() {
        eprintln!("(no --public-url: the link is relative to the site's address)");
    }
    println!("{base}/password-reset/{}", token.as_str());
    reported(
        &store,
        kind,
        &user,
        Some(details.id),
        &format!(
            "one-time reset link, valid for {}, for",
            humantime::format_duration(config.reset_ttl)
        ),
    )
}

fn set_password(config: &Config, typed: &str) -> Result<()> {
    let user = username(typed)?;
    let store = existing_store(config)?;
    let kind = "admin.user.set_password";
    if wait(store.user_details(&user))?.is_none() {
        return reported(&store, kind, &user, None, "");
    }
    let password = read_password(user.as_str())?;
    let accounts = accounts(config, &store)?;
    let changed = match wait(accounts.reset_password(&user, plain_password(&password))) {
        Ok(changed) => changed,
        Err(ResetError::Invalid(errors)) => return password_refused(errors),
        Err(ResetError::Kdf(e)) => return Err(e.into()),
        Err(ResetError::Store(e)) => return Err(e.into()),
    };
    reported(
        &store,
        kind,
        &user,
        changed,
        "new password (sessions ended) for",
    )
}
