//! Command-line configuration (SPEC §9): every setting is a flag with a `GATEHOUSE_*`
//! environment fallback, listed by `gatehouse --help` and `gatehouse serve --help`. Admin
//! subcommands accept the same settings anywhere on the line, but their `--help` shows only
//! their own arguments and the settings they read ([`settings_read_by`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use ipnet::IpNet;

use crate::security::password::KdfParams;

fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 30m, 12h, 2s)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn proxy(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))
}

fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Whether the public may sign up.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignUp {
    Open,
    Closed,
}

/// Gatehouse: a self-hosted sign-up / sign-in website. Run without arguments to serve on
/// http://127.0.0.1:8080 with ./users.database.
#[derive(Parser, Clone, Debug)]
#[command(name = "gatehouse", version, about, long_about = None, args_override_self = true)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, env = "GATEHOUSE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// SQLite database file, created from the built-in schema when missing.
    #[arg(long, env = "GATEHOUSE_DATABASE", default_value = "users.database")]
    pub database: PathBuf,

    /// Secret key file (32 random bytes, mode 0600, created at first start) used when
    /// GATEHOUSE_SECRET_KEY (hex) is not set. Default: `gatehouse.key` beside the database.
    #[arg(long, env = "GATEHOUSE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// The site's public origin, e.g. https://login.example.com, used for the Origin check.
    /// Default: the request's own scheme and Host.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Mark cookies Secure and use the __Host- prefix (serve over HTTPS).
    #[arg(long, env = "GATEHOUSE_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-* headers are trusted.
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = proxy)]
    pub trusted_proxies: Vec<IpNet>,

    /// HTTP worker threads. Default: one per core.
    #[arg(long, env = "GATEHOUSE_WORKERS", default_value_t = default_parallelism())]
    pub workers: usize,

    /// Threads that run Argon2. Default: one fewer than the cores (at least 1), so a
    /// sign-in flood leaves a core for serving pages.
    #[arg(long, env = "GATEHOUSE_KDF_THREADS", default_value_t = default_parallelism().saturating_sub(1).max(1))]
    pub kdf_threads: usize,

    /// Sign-ins waiting for a KDF thread before new ones are refused with 503.
    #[arg(long, env = "GATEHOUSE_KDF_QUEUE", default_value_t = 256)]
    pub kdf_queue: usize,

    /// Argon2id memory cost in KiB (OWASP: 19456).
    #[arg(
        long = "argon2-m",
        env = "GATEHOUSE_ARGON2_M",
        default_value_t = 19_456
    )]
    pub argon2_m: u32,

    /// Argon2id time cost (iterations).
    #[arg(long = "argon2-t", env = "GATEHOUSE_ARGON2_T", default_value_t = 2)]
    pub argon2_t: u32,

    /// Argon2id parallelism (lanes).
    #[arg(long = "argon2-p", env = "GATEHOUSE_ARGON2_P", default_value_t = 1)]
    pub argon2_p: u32,

    /// Failed sign-ins that lock a username.
    #[arg(long, env = "GATEHOUSE_LOCK_ATTEMPTS", default_value_t = 3)]
    pub lock_attempts: u32,

    /// How long a username stays locked after its last failed attempt.
    #[arg(long, env = "GATEHOUSE_LOCK_WINDOW", default_value = "10m", value_parser = duration)]
    pub lock_window: Duration,

    /// Most usernames with a live failure record. Default: what the KDF pool can produce in
    /// one lock window (measured at start-up), at least 10000.
    #[arg(long, env = "GATEHOUSE_LOCK_MAX_ENTRIES")]
    pub lock_max_entries: Option<usize>,

    /// Failed attempts (wrong passwords, locked or taken usernames) from one address (IPv6: one
    /// /64) within --ip-window before it gets 429 for every username; 0 turns this off.
    #[arg(long, env = "GATEHOUSE_IP_FAILURES", default_value_t = 30)]
    pub ip_failures: u32,

    /// The window of --ip-failures, counted from the address's last failure.
    #[arg(long, env = "GATEHOUSE_IP_WINDOW", default_value = "10m", value_parser = duration)]
    pub ip_window: Duration,

    /// Argon2 runs (sign-ins, sign-ups, password changes) per minute one address may cause,
    /// as a token bucket with the same burst; an empty budget is refused (429) only while the
    /// KDF pool has jobs waiting. 0 turns this off.
    #[arg(long, env = "GATEHOUSE_IP_KDF_RATE", default_value_t = 120)]
    pub ip_kdf_rate: u32,

    /// Most addresses tracked by each address limit; a new address beyond that gets 503.
    #[arg(long, env = "GATEHOUSE_IP_MAX_ENTRIES", default_value_t = 100_000)]
    pub ip_max_entries: usize,

    /// A session ends after this long without a request.
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE", default_value = "30m", value_parser = duration)]
    pub session_idle: Duration,

    /// A session ends this long after sign-in, active or not.
    #[arg(long, env = "GATEHOUSE_SESSION_MAX", default_value = "12h", value_parser = duration)]
    pub session_max: Duration,

    /// Time a client has to send a request's headers, and again its body; slower clients get
    /// 408 and are disconnected (slowloris defence).
    #[arg(long, env = "GATEHOUSE_CLIENT_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub client_timeout: Duration,

    /// Open connections per HTTP worker; beyond that, new connections wait in the kernel's
    /// accept queue until one closes.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value_t = 5_000)]
    pub max_connections: usize,

    /// Whether visitors may create accounts; when closed only `gatehouse user add` does.
    #[arg(long = "sign-up", env = "GATEHOUSE_SIGN_UP", value_enum, default_value_t = SignUp::Open)]
    pub sign_up: SignUp,

    /// Serve Prometheus metrics at http://ADDR/metrics (a separate, private address; off when
    /// unset). Never served on the public address.
    #[arg(long, env = "GATEHOUSE_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// PEM certificate chain: serve HTTPS directly (with --tls-key). Turns on secure cookies
    /// and HSTS.
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How long audit events are kept.
    #[arg(long, env = "GATEHOUSE_AUDIT_RETENTION", default_value = "90d", value_parser = duration)]
    pub audit_retention: Duration,

    /// Log filter (error, warn, info, debug, trace or a tracing directive).
    #[arg(long, env = "GATEHOUSE_LOG", default_value = "info")]
    pub log_level: String,
}

/// Gatehouse: a self-hosted sign-up / sign-in website. Run without arguments to serve on
/// http://127.0.0.1:8080 with ./users.database.
///
/// The subcommands as clap derives them; [`command`] adds the server settings to every level.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about, long_about = None, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to run, with the settings given before, between or after the subcommand's words (the
/// last one given wins, then the environment, then the default).
#[derive(Debug)]
pub struct Invocation {
    pub config: Config,
    /// `None` serves, like `Some(Command::Serve)`.
    pub command: Option<Command>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Serve the site (what `gatehouse` alone does).
    Serve,
    /// Manage users: add, list, show, disable, enable, delete, unlock, set-password.
    #[command(subcommand)]
    User(UserCommand),
    /// List and revoke sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Check or back up the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Import the users of the original FastAPI demo's users.database; they keep their
    /// passwords. Shows its progress (a bar on a terminal, a line every few seconds otherwise).
    ImportSeed {
        /// The demo's SQLite file (table users(id, username, password_hash)).
        path: PathBuf,
    },
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
    /// Set a new password (prompt or standard input, like `add`); ends the user's sessions.
    SetPassword {
        /// The user's username.
        username: String,
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
pub enum DbCommand {
    /// Integrity check and schema version.
    Check,
    /// A consistent copy of the live database (SQLite online backup), with its progress.
    Backup {
        /// Where to write the copy: a new file (an existing one is refused).
        path: PathBuf,
    },
}

/// The server settings an admin command reads, which its `--help` shows. Every subcommand
/// accepts every setting, hidden where it does nothing, because scripts (and `gadm` aliases)
/// pass `--database` and the Argon2 costs to all of them, before or after the subcommand.
fn settings_read_by(path: &[&str]) -> &'static [&'static str] {
    const HASHING: &[&str] = &["database", "argon2_m", "argon2_t", "argon2_p"];
    const BULK: &[&str] = &[
        "database",
        "argon2_m",
        "argon2_t",
        "argon2_p",
        "kdf_threads",
    ];
    const SESSIONS: &[&str] = &["database", "session_idle"];
    match path {
        ["user", "add" | "set-password"] => HASHING,
        ["user", "show"] | ["session", "list" | "purge-expired"] => SESSIONS,
        ["import-seed" | "bench-data"] => BULK,
        ["bench-kdf"] => &["argon2_m", "argon2_t", "argon2_p"],
        // Groups: their subcommands say what they read.
        ["user" | "session" | "db"] => &[],
        _ => &["database"],
    }
}

/// Every server setting, as `gatehouse --help` lists it.
fn settings() -> Vec<clap::Arg> {
    Config::command()
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .cloned()
        .collect()
}

/// The whole command line: the subcommands, and the server settings on every level (shown on
/// `gatehouse` and `serve`, and on each admin command only where [`settings_read_by`] says).
pub fn command() -> clap::Command {
    let settings = settings();
    with_settings(Cli::command().args(settings.clone()), &settings, &[])
}

fn with_settings(cmd: clap::Command, settings: &[clap::Arg], path: &[&str]) -> clap::Command {
    cmd.mut_subcommands(|sub| {
        let name = sub.get_name().to_owned();
        let path: Vec<&str> = path.iter().copied().chain([name.as_str()]).collect();
        let serve = path == ["serve"];
        let shown = |a: &clap::Arg| serve || settings_read_by(&path).contains(&a.get_id().as_str());
        // An admin command lists its own options first, then the settings it reads.
        let heading = (!serve).then_some("Settings");
        let sub = sub.args_override_self(true).args(
            settings
                .iter()
                .map(|a| a.clone().hide(!shown(a)).help_heading(heading)),
        );
        with_settings(sub, settings, &path)
    })
}

/// Parses the process's arguments; a usage error or `--help` exits.
pub fn parse() -> Invocation {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

pub fn try_parse_from<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    let config = merged_settings(&matches).map_err(|e| e.format(&mut cmd))?;
    Ok(Invocation {
        config,
        command: cli.command,
    })
}

/// The settings as given at any level: for each, the innermost command-line occurrence (the
/// last one typed), else its environment variable, else its default. Rebuilt as a plain
/// `gatehouse --flag=value …` line and parsed as [`Config`] once more, so that parsing stays
/// clap's: the values were already checked, and env and defaults apply the usual way.
fn merged_settings(matches: &clap::ArgMatches) -> Result<Config, clap::Error> {
    let settings = settings();
    let mut given: Vec<Option<Vec<std::ffi::OsString>>> = vec![None; settings.len()];
    let mut level = Some(matches);
    while let Some(m) = level {
        for (arg, slot) in settings.iter().zip(&mut given) {
            let id = arg.get_id().as_str();
            if m.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                *slot = Some(as_flags(arg, m));
            }
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    let line = std::iter::once("gatehouse".into()).chain(given.into_iter().flatten().flatten());
    Config::try_parse_from(line)
}

/// `--long` for a switch, `--long=VALUE` for each value of an option.
fn as_flags(arg: &clap::Arg, m: &clap::ArgMatches) -> Vec<std::ffi::OsString> {
    let long = format!(
        "--{}",
        arg.get_long().expect("every setting is a long flag")
    );
    if !arg.get_action().takes_values() {
        return vec![long.into()];
    }
    m.get_raw(arg.get_id().as_str())
        .into_iter()
        .flatten()
        .map(|v| {
            let mut flag = std::ffi::OsString::from(format!("{long}="));
            flag.push(v);
            flag
        })
        .collect()
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

impl Config {
    /// Cookies are `Secure` with the `__Host-` prefix and HSTS is sent: asked for, or implied by
    /// serving TLS directly.
    pub fn secure(&self) -> bool {
        self.secure_cookies || self.tls_cert.is_some()
    }

    pub fn kdf_params(&self) -> KdfParams {
        KdfParams {
            m_kib: self.argon2_m,
            t: self.argon2_t,
            p: self.argon2_p,
        }
    }

    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file.clone().unwrap_or_else(|| {
            let dir = self
                .database
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default();
            dir.join("gatehouse.key")
        })
    }

    /// A configuration for tests: defaults, the given database, port 0.
    pub fn for_tests(database: PathBuf) -> Self {
        let mut c = Self::parse_from(["gatehouse"]);
        c.database = database;
        c.bind = "127.0.0.1:0".parse().expect("literal address");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::parse_from(["gatehouse"]);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database, PathBuf::from("users.database"));
        assert_eq!(c.kdf_params(), KdfParams::default());
        assert_eq!(c.lock_attempts, 3);
        assert_eq!(c.lock_window, Duration::from_secs(600));
        assert_eq!(c.session_idle, Duration::from_secs(1800));
        assert_eq!(c.session_max, Duration::from_secs(43_200));
        assert!(c.kdf_queue >= 256);
        assert_eq!(c.secret_key_path(), PathBuf::from("gatehouse.key"));
    }

    #[test]
    fn parses_flags() {
        let c = Config::parse_from([
            "gatehouse",
            "--bind",
            "127.0.0.1:0",
            "--database",
            "/tmp/x/db",
            "--lock-window",
            "2s",
            "--argon2-m",
            "64",
            "--trusted-proxies",
            "10.0.0.1,192.168.0.0/16",
        ]);
        assert_eq!(c.lock_window, Duration::from_secs(2));
        assert_eq!(c.argon2_m, 64);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.secret_key_path(), PathBuf::from("/tmp/x/gatehouse.key"));
        assert!(Config::try_parse_from(["gatehouse", "--lock-window", "soon"]).is_err());
        assert!(Config::try_parse_from(["gatehouse", "--session-idle", "0s"]).is_err());
        // A later flag overrides an earlier one (wrapper scripts append their own).
        let c = Config::parse_from(["gatehouse", "--argon2-m", "64", "--argon2-m", "128"]);
        assert_eq!(c.argon2_m, 128);
    }

    #[test]
    fn every_flag_has_an_env_fallback() {
        let cmd = Config::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{id} has no env fallback"));
            assert!(env.to_string_lossy().starts_with("GATEHOUSE_"));
        }
    }

    fn help_of(words: &[&str]) -> String {
        let line = ["gatehouse"].iter().chain(words).chain(&["--help"]);
        let err = try_parse_from(line).expect_err("--help stops parsing");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        err.render().to_string()
    }

    /// Every command, hidden ones included, with its words (`["user", "add"]`).
    fn all_commands(
        cmd: &clap::Command,
        path: Vec<String>,
        out: &mut Vec<(Vec<String>, clap::Command)>,
    ) {
        for sub in cmd.get_subcommands() {
            let mut words = path.clone();
            words.push(sub.get_name().to_owned());
            all_commands(sub, words.clone(), out);
            out.push((words, sub.clone()));
        }
    }

    #[test]
    fn every_argument_of_every_command_says_what_it_is() {
        let root = command();
        let mut commands = vec![(Vec::new(), root.clone())];
        all_commands(&root, Vec::new(), &mut commands);
        assert!(commands.len() > 20, "{} commands", commands.len());
        for (words, cmd) in &commands {
            if !words.is_empty() {
                assert!(
                    cmd.get_about().is_some(),
                    "gatehouse {words:?} has no description"
                );
            }
            for arg in cmd.get_arguments() {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    help.trim().len() > 5,
                    "gatehouse {words:?}: {} has no help line",
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn admin_help_lists_its_own_options_and_only_the_settings_it_reads() {
        let add = help_of(&["user", "add"]);
        assert!(add.contains("--email <EMAIL>"), "{add}");
        assert!(add.contains("Email address (optional; unique"), "{add}");
        assert!(add.contains("--full-name"), "{add}");
        assert!(
            add.contains("--database") && add.contains("GATEHOUSE_DATABASE"),
            "{add}"
        );
        assert!(add.contains("--argon2-m"), "{add}");
        for server_only in [
            "--ip-kdf-rate",
            "--bind",
            "--workers",
            "--tls-cert",
            "--kdf-queue",
        ] {
            assert!(
                !add.contains(server_only),
                "user add --help lists {server_only}:\n{add}"
            );
        }
        let import = help_of(&["import-seed"]);
        assert!(
            import.contains("--kdf-threads") && import.contains("--argon2-t"),
            "{import}"
        );
        for words in [
            &["user"][..],
            &["user", "list"],
            &["session", "revoke"],
            &["db", "backup"],
            &["db", "check"],
            &["audit"],
        ] {
            let help = help_of(words);
            assert!(!help.contains("--ip-kdf-rate"), "{words:?}:\n{help}");
            assert!(!help.contains("--argon2-m"), "{words:?}:\n{help}");
            assert_eq!(
                help.contains("--database"),
                words != ["user"],
                "{words:?}:\n{help}"
            );
        }
        assert!(help_of(&["session", "list"]).contains("--session-idle"));
        // The server keeps every flag.
        for words in [&[][..], &["serve"]] {
            let help = help_of(words);
            for flag in [
                "--ip-kdf-rate",
                "--bind",
                "--database",
                "--tls-cert",
                "--log-level",
            ] {
                assert!(help.contains(flag), "{words:?} lacks {flag}:\n{help}");
            }
        }
    }

    fn config_of(line: &[&str]) -> Config {
        try_parse_from(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .config
    }

    #[test]
    fn settings_count_wherever_they_stand_on_the_line() {
        for line in [
            &["gatehouse", "--database", "a.db", "user", "add", "al"][..],
            &["gatehouse", "user", "--database", "a.db", "add", "al"],
            &["gatehouse", "user", "add", "al", "--database", "a.db"],
            &["gatehouse", "user", "add", "--database=a.db", "al"],
            &[
                "gatehouse",
                "--database",
                "x.db",
                "user",
                "add",
                "al",
                "--database",
                "a.db",
            ],
        ] {
            let got = try_parse_from(line).unwrap();
            assert_eq!(got.config.database, PathBuf::from("a.db"), "{line:?}");
            assert!(
                matches!(got.command, Some(Command::User(UserCommand::Add { ref username, .. })) if username == "al"),
                "{line:?}"
            );
        }
        // Settings an admin command hides still parse, so scripts that pass them keep working.
        let c = config_of(&[
            "gatehouse",
            "db",
            "check",
            "--ip-kdf-rate",
            "7",
            "--argon2-m",
            "64",
        ]);
        assert_eq!((c.ip_kdf_rate, c.argon2_m), (7, 64));
        // The server: before and after `serve`, switches, lists, the later one winning.
        let c = config_of(&[
            "gatehouse",
            "--argon2-m",
            "64",
            "--bind",
            "127.0.0.1:0",
            "serve",
            "--argon2-m",
            "128",
            "--secure-cookies",
            "--trusted-proxies",
            "10.0.0.1,192.168.0.0/16",
            "--lock-window",
            "2s",
        ]);
        assert_eq!(c.argon2_m, 128);
        assert_eq!(c.bind.to_string(), "127.0.0.1:0");
        assert!(c.secure_cookies);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.lock_window, Duration::from_secs(2));
        let c = config_of(&["gatehouse", "--secure-cookies", "serve"]);
        assert!(c.secure_cookies);
        let c = config_of(&["gatehouse"]);
        assert_eq!(c.database, PathBuf::from("users.database"));
        assert!(!c.secure_cookies);
        // A value that looks like a flag survives the merge.
        let c = config_of(&["gatehouse", "user", "list", "--database=-odd.db"]);
        assert_eq!(c.database, PathBuf::from("-odd.db"));
        assert!(try_parse_from(["gatehouse", "user", "list", "--lock-window", "soon"]).is_err());
        assert!(try_parse_from(["gatehouse", "user", "list", "--no-such-flag"]).is_err());
    }
}
