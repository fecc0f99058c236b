//! Admin commands (`gatehouse user …`, `session …`, `db …`, `import-seed`, `audit`): they open
//! the same database as the server, may run while it does, and take effect on it at once,
//! because the server keeps no state these commands change behind its back: sessions are read
//! per request, and an unlock is a time on the user's row that the server checks before it
//! refuses a locked name.
//!
//! Exit codes: 0 done, 1 refused or failed (message on stderr), 2 usage (clap). Every command
//! that acts on the database writes an `admin.*` audit event, refusals included.

mod bench_data;
mod db;
mod groups;
mod import;
mod key;
mod mail;
mod sessions;
mod users;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{Command, Config};
use crate::clock::format_ms;
use crate::store::{AuditEvent, AuditFilter, Store};

/// A refusal or failure: printed on stderr, exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Kdf(#[from] crate::security::password::KdfError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, AdminError>;

pub fn refused<T>(msg: impl Into<String>) -> Result<T> {
    Err(AdminError::Refused(msg.into()))
}

pub fn run(config: &Config, command: Command) -> ExitCode {
    // Admin output is the command's own; the log only says what went wrong.
    crate::server::init_tracing(if config.log_level == "info" {
        "warn"
    } else {
        &config.log_level
    });
    let result = match command {
        Command::Serve => unreachable!("main serves"),
        Command::User(c) => users::run(config, c),
        Command::Session(c) => sessions::run(config, c),
        Command::Db(c) => db::run(config, c),
        Command::Key(c) => key::run(config, c),
        Command::Mail(c) => mail::run(config, c),
        Command::ImportSeed { path } => import::run(config, &path),
        Command::Audit {
            user,
            since,
            event,
            limit,
        } => audit(config, user, since, event, limit),
        Command::BenchData(args) => bench_data::run(config, &args),
        Command::BenchKdf { threads, seconds } => bench_data::kdf_rate(config, threads, seconds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Drives one storage call to its end. The commands are synchronous and the storage interface
/// is async (a network backend needs it), so each command thread keeps one current-thread
/// runtime; on SQLite the calls complete at their first poll.
fn wait<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// The database of an existing installation; commands other than `user add` and
/// `import-seed` do not create one.
fn existing_store(config: &Config) -> Result<Store> {
    if !config.database_is_url() && !config.database.exists() {
        return refused(format!(
            "no database at {} (start the server once, or pass --database)",
            config.database.display()
        ));
    }
    Ok(Store::open_with(&config.database, &config.pg_options())?)
}

/// Who ran the command, for the audit trail: the OS user (and the sudo user behind it).
fn operator() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut who = format!("uid {uid}");
    if let Ok(name) = std::env::var("USER") {
        who.push_str(&format!(" ({name})"));
    }
    if let Ok(sudo) = std::env::var("SUDO_USER") {
        who.push_str(&format!(" via sudo by {sudo}"));
    }
    who
}

/// Writes the audit event of an admin command; `kind` is e.g. `admin.user.disable`.
fn audit_admin(
    store: &Store,
    kind: &'static str,
    outcome: &'static str,
    username: Option<&str>,
    user_id: Option<i64>,
    detail: Option<String>,
) {
    use crate::audit::EventExt;
    let mut e: AuditEvent = crate::audit::event(kind, outcome).user(username, user_id);
    e.user_agent = Some("gatehouse admin command".into());
    let by = operator();
    e.detail = Some(match detail {
        Some(d) => format!("{d}; by {by}"),
        None => format!("by {by}"),
    });
    if let Err(err) = wait(store.write_audit(&[e], &[])) {
        eprintln!("gatehouse: warning: the audit event was not written: {err}");
    }
}

/// Reads a new password: from a no-echo prompt (asked twice) on a terminal, else the first
/// line of standard input. Never from the command line, where `ps` and shell history see it.
fn read_password(username: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {username}: "))?;
        let again = rpassword::prompt_password("Repeat the password: ")?;
        if first != again {
            return refused("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)?;
        if n == 0 {
            return refused("no password on standard input");
        }
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        Ok(trimmed.to_owned())
    }
}

/// Argon2id over each digest, spread over `threads` threads (imports and bench data hash many
/// at once; the server's own pool is not running here), counting each hash on `progress`.
fn hash_all(
    kdf: &crate::security::password::Kdf,
    digests: &[&crate::security::digest::PasswordDigest],
    threads: usize,
    progress: &crate::progress::Progress,
) -> Result<Vec<String>> {
    let per = digests.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let jobs: Vec<_> = digests
            .chunks(per)
            .map(|chunk| {
                s.spawn(move || {
                    let hash = |d| {
                        let h = kdf.hash(d);
                        progress.inc(1);
                        h
                    };
                    chunk.iter().map(|d| hash(d)).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(digests.len());
        for job in jobs {
            for hash in job.join().expect("hashing thread panicked") {
                out.push(hash?);
            }
        }
        Ok(out)
    })
}

/// A typed username in canonical form, or a refusal naming the rule.
fn username(typed: &str) -> Result<crate::domain::Username> {
    crate::domain::Username::parse(typed)
        .or_else(|m| refused(format!("{typed:?} is not a valid username: {m}")))
}

fn audit(
    config: &Config,
    user: Option<String>,
    since: Option<std::time::SystemTime>,
    event: Option<String>,
    limit: usize,
) -> Result<()> {
    let store = existing_store(config)?;
    audit_admin(&store, "admin.audit", "ok", user.as_deref(), None, None);
    let since_ms = since.map(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    });
    let rows = wait(store.audit_events(&AuditFilter {
        username: user.map(|u| crate::domain::canonical_username(&u)),
        since_ms,
        event,
        limit,
    }))?;
    println!("time\tevent\toutcome\tusername\tuser_id\taddress\tcount\tlast\tuser_agent\tdetail");
    for r in rows {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            format_ms(r.at_ms),
            r.event,
            r.outcome,
            r.username.as_deref().unwrap_or("-"),
            r.user_id.map_or_else(|| "-".into(), |i| i.to_string()),
            r.ip.as_deref().unwrap_or("-"),
            r.count,
            format_ms(r.last_ms),
            clean(r.user_agent.as_deref().unwrap_or("-")),
            clean(r.detail.as_deref().unwrap_or("-")),
        );
    }
    Ok(())
}

/// Attacker-chosen text (user agents) cannot break the tab-separated output or the terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
