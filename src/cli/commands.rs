//! The subcommands and their own arguments: serving, and the admin commands `src/admin/` runs.

use std::path::PathBuf;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Serve the site (what `gatehouse` alone does).
    Serve,
    /// Manage users: add, list, show, disable, enable, delete, unlock, set-password, group.
    #[command(subcommand)]
    User(UserCommand),
    /// List and revoke sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Check, back up or copy the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Replace the site's secret key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Import the users of the original FastAPI demo's users.database; they keep their
    /// passwords. Shows its progress (a bar on a terminal, a line every few seconds otherwise).
    ImportSeed {
        /// The demo's SQLite file (table users(id, username, password_hash)).
        path: PathBuf,
    },
    /// Check outgoing mail: `mail test ADDRESS` sends a test message and shows the answer.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Print the audit trail, oldest first.
    Audit {
        /// Only events of this username.
        #[arg(long)]
        user: Option<String>,
        /// Only events since this time: RFC 3339 (2026-01-02T03:04:05Z) or a duration ago (2h).
        #[arg(long, value_parser = since)]
        since: Option<std::time::SystemTime>,
        /// Only events of this kind (e.g. sign_in, sign_up, admin.user.disable).
        #[arg(long)]
        event: Option<String>,
        /// Print at most this many events (the most recent ones).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Fill the database with synthetic users and sessions for benchmarks (one shared hash).
    #[command(hide = true)]
    BenchData(BenchDataArgs),
    /// Raw Argon2id rate with the configured parameters: hashes per second on N threads.
    #[command(hide = true)]
    BenchKdf {
        /// Threads hashing at once.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// How long to measure, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

/// `gatehouse bench-data`: users `bench0…`, one session each for the first `sessions`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchDataArgs {
    /// Users to create: bench0, bench1, …
    #[arg(long)]
    pub users: u64,
    /// Users (from bench0) given one session each.
    #[arg(long, default_value_t = 0)]
    pub sessions: u64,
    /// Users (from bench0) with their own correct hash, for concurrent sign-ins.
    #[arg(long, default_value_t = 128)]
    pub sign_in_users: u64,
    /// Write up to 1000 session cookie values, spread over all sessions, one per line.
    #[arg(long)]
    pub sample_cookies: Option<PathBuf>,
    /// Write one form body (`username=…&password_digest=…`) per sign-in user, one per line.
    #[arg(long)]
    pub sign_in_bodies: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Create a user; the password is read from a no-echo prompt, or from standard input's
    /// first line when it is not a terminal.
    Add {
        /// Username: 3–32 of a–z, 0–9 and _ (capitals are stored lower-case).
        username: String,
        /// Email address (optional; unique, ignoring case).
        #[arg(long)]
        email: Option<String>,
        /// Full name the site greets the user by (optional; up to 100 characters).
        #[arg(long)]
        full_name: Option<String>,
    },
    /// List users.
    List,
    /// Show one user, their sessions and lock state.
    Show {
        /// The user's username.
        username: String,
    },
    /// Disable a user: they cannot sign in and their sessions end.
    Disable {
        /// The user's username.
        username: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's username.
        username: String,
    },
    /// Delete a user and their sessions.
    Delete {
        /// The user's username.
        username: String,
    },
    /// Lift the fail-lock on a username, on the running server too.
    Unlock {
        /// The locked username.
        username: String,
    },
    /// Remove the user's second factors (authenticator codes, recovery codes and passkeys):
    /// the recovery path for a user who lost them. Their password stays.
    #[command(name = "reset-2fa")]
    Reset2fa {
        /// The user's username.
        username: String,
    },
    /// Set a new password (prompt or standard input, like `add`); ends the user's sessions.
    SetPassword {
        /// The user's username.
        username: String,
    },
    /// Print a one-time password-reset link for the user (for support, or a site without
    /// mail): it works once, for --reset-ttl, and a newer link or any password change ends it.
    ResetLink {
        /// The user's username.
        username: String,
    },
    /// Add a user to a group or remove them from one (`user show` lists their groups).
    #[command(subcommand)]
    Group(GroupCommand),
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum GroupCommand {
    /// Add a user to a group (already in it: nothing changes).
    Add {
        /// The user's username.
        username: String,
        /// The group: 1–32 of a–z, 0–9, _ and - (taken as typed: no capitals).
        group: String,
    },
    /// Remove a user from a group (not in it: nothing changes).
    Remove {
        /// The user's username.
        username: String,
        /// The group: 1–32 of a–z, 0–9, _ and -.
        group: String,
    },
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SessionCommand {
    /// List live sessions by public id.
    List {
        /// Only sessions of this username.
        #[arg(long)]
        user: Option<String>,
    },
    /// End a session by its public id (as `/account` and `session list` show it).
    Revoke {
        /// The session's public id (first column of `session list`).
        id: i64,
    },
    /// Delete expired sessions now.
    PurgeExpired,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum MailCommand {
    /// Send a test message to ADDRESS through --smtp-url at once (the server need not run)
    /// and print what the SMTP server answered; exit 1 with its answer when it refused or
    /// could not be reached.
    Test {
        /// Where to send the test message.
        address: String,
        /// Queue the message in the outbox for the running server's sender instead (for
        /// tests of the outbox).
        #[arg(long, hide = true)]
        queue: bool,
    },
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum DbCommand {
    /// Integrity check and schema version (SQLite or PostgreSQL).
    Check,
    /// A consistent copy of the live database (SQLite online backup), with its progress.
    /// PostgreSQL: use pg_dump.
    Backup {
        /// Where to write the copy: a new file (an existing one is refused).
        path: PathBuf,
    },
    /// Copy the SQLite database (--database) into an empty PostgreSQL database: every user,
    /// session, group, audit event, link and queued mail, ids kept. Stop the server first.
    Copy {
        /// The PostgreSQL database to fill: postgres://USER@HOST:PORT/DB (its password in
        /// PGPASSWORD). Must be empty; its schema is created.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum KeyCommand {
    /// Replace the secret key: re-encrypts what the database holds under the old key (queued
    /// mail) for the current one (GATEHOUSE_SECRET_KEY or --secret-key-file, created when
    /// missing) and records its fingerprint. Stop every server first; start them with the
    /// new key.
    Rotate {
        /// The old key's file, when GATEHOUSE_OLD_SECRET_KEY (hex) is not set.
        #[arg(long)]
        old_secret_key_file: Option<PathBuf>,
    },
}

/// `--since`: an RFC 3339 time, or a humantime duration before now.
fn since(s: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let ago = humantime::parse_duration(s)
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor a duration like 2h"))?;
    std::time::SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("{s:?} is too long ago"))
}
