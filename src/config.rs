//! The server's settings (docs/behaviour.md §9): every one is a flag with a `GATEHOUSE_*`
//! environment fallback, listed by `gatehouse --help`. The command line (`src/cli/`)
//! puts them on every subcommand's line too; nothing here depends on it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
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
/// `--email-verification`: whether addresses are confirmed by a mailed link, and whether an
/// unconfirmed one keeps its user out.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmailVerification {
    /// No confirmation mails; no address is ever confirmed.
    Off,
    /// Addresses get a confirmation link; signing in does not wait for it.
    #[default]
    Optional,
    /// An address is needed at sign-up, and signing in waits until it is confirmed.
    Required,
}

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

    /// SQLite database file, created from the built-in schema when missing; or a PostgreSQL
    /// database, `postgres://USER@HOST:PORT/DB` (the password in PGPASSWORD, or in
    /// GATEHOUSE_DATABASE rather than this flag, which `ps` shows).
    #[arg(long, env = "GATEHOUSE_DATABASE", default_value = "users.database")]
    pub database: PathBuf,

    /// PostgreSQL: connections in each instance's pool.
    #[arg(long, env = "GATEHOUSE_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,

    /// PostgreSQL: how long to wait for a new connection.
    #[arg(long, env = "GATEHOUSE_DB_CONNECT_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub db_connect_timeout: Duration,

    /// PostgreSQL: how long a request waits for a free connection, and how long a statement may
    /// run, before the request is answered 503.
    #[arg(long, env = "GATEHOUSE_DB_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub db_timeout: Duration,

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

    /// Serve the files under DIR at --protect-at to signed-in, active users only (off when
    /// unset).
    #[arg(long, env = "GATEHOUSE_PROTECT_DIR")]
    pub protect_dir: Option<PathBuf>,

    /// The URL prefix of --protect-dir; may not overlap Gatehouse's own routes.
    #[arg(long, env = "GATEHOUSE_PROTECT_AT", default_value = "/members")]
    pub protect_at: String,

    /// Content-Security-Policy for the --protect-dir files only (e.g. to allow their inline
    /// script). Default: the site's strict policy.
    #[arg(long, env = "GATEHOUSE_PROTECT_CSP")]
    pub protect_csp: Option<String>,

    /// Email confirmation: `off` (never), `optional` (a link is mailed; signing in does not
    /// wait), `required` (an address is needed at sign-up and signing in waits for its
    /// confirmation; needs --smtp-url and --public-url).
    #[arg(long, env = "GATEHOUSE_EMAIL_VERIFICATION", value_enum, default_value_t = EmailVerification::Optional)]
    pub email_verification: EmailVerification,

    /// How long a password-reset link works (`gatehouse user reset-link`, and the mailed ones).
    #[arg(long, env = "GATEHOUSE_RESET_TTL", default_value = "1h", value_parser = duration)]
    pub reset_ttl: Duration,

    /// Reset links mailed for one account within an hour at most; past it, a request still
    /// gets the same answer but no mail and no new link (the last one mailed stays good).
    #[arg(long, env = "GATEHOUSE_RESET_MAILS_PER_HOUR", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub reset_mails_per_hour: u32,

    /// Forward authentication: the hosts a sign-in may send the browser back to (the `rd` of
    /// /auth/request and /auth/forward), each name itself or any name under it,
    /// comma-separated. Needs --public-url. Default: none, so no `rd` is ever followed.
    #[arg(long, env = "GATEHOUSE_FORWARD_DOMAINS", value_delimiter = ',')]
    pub forward_domains: Vec<String>,

    /// Give the session cookie (only it) `Domain=` this name, so that apps on every host under
    /// it share the sign-in (forward-auth on subdomains). --public-url's host must be under it.
    /// Default: host-only cookies.
    #[arg(long, env = "GATEHOUSE_COOKIE_DOMAIN")]
    pub cookie_domain: Option<String>,

    /// Send mail (password reset, email verification, notices) through this SMTP server:
    /// smtp://host:port (plain, a local relay), smtp+starttls://host:587 or smtps://host:465,
    /// with USER[:PASSWORD]@ (the password better in GATEHOUSE_SMTP_PASSWORD, out of `ps`).
    /// Needs --public-url. Default: no mail.
    #[arg(long, env = "GATEHOUSE_SMTP_URL", hide_env_values = true, value_parser = crate::mail::settings::SmtpUrlParser)]
    pub smtp_url: Option<crate::mail::SmtpUrl>,

    /// The sender of mail, "Name <address>". Default: Gatehouse <noreply@HOST> with HOST
    /// from --public-url.
    #[arg(long, env = "GATEHOUSE_MAIL_FROM", value_parser = crate::mail::settings::parse_from)]
    pub mail_from: Option<lettre::message::Mailbox>,

    /// The wait after a message's first failed delivery attempt, doubled after each further
    /// one up to 10 minutes (and how often the outbox is checked when idle, at most 30 s).
    #[arg(long, env = "GATEHOUSE_MAIL_RETRY_BASE", default_value = "5s", value_parser = duration, hide = true)]
    pub mail_retry_base: Duration,

    /// Log filter (error, warn, info, debug, trace or a tracing directive).
    #[arg(long, env = "GATEHOUSE_LOG", default_value = "info")]
    pub log_level: String,
}

impl Config {
    /// The settings from the command line and `GATEHOUSE_*` variables, as `gatehouse` reads
    /// them (an app embedding Gatehouse takes the same flags); `--help` prints them all.
    pub fn from_args() -> Self {
        <Self as Parser>::parse()
    }

    /// The mail settings (`--smtp-url`, `--mail-from`, `--public-url`, and the SMTP password
    /// from the environment); `None` without `--smtp-url`.
    pub fn mail_settings(&self) -> Result<Option<crate::mail::MailSettings>, String> {
        crate::mail::MailSettings::from_parts(
            self.smtp_url.as_ref(),
            self.mail_from.as_ref(),
            self.public_url.as_deref(),
            std::env::var(crate::mail::settings::PASSWORD_ENV).ok(),
        )
    }

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

    /// Whether `--database` names a PostgreSQL database.
    pub fn database_is_url(&self) -> bool {
        self.database
            .to_str()
            .is_some_and(crate::store::postgres::is_url)
    }

    /// The PostgreSQL pool settings.
    pub fn pg_options(&self) -> crate::store::postgres::PgOptions {
        crate::store::postgres::PgOptions {
            pool_size: self.db_pool_size as usize,
            workers: self.workers,
            connect_timeout: self.db_connect_timeout,
            timeout: self.db_timeout,
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
    #[cfg(test)]
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
    use clap::CommandFactory;

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
        let c = Config::parse_from([
            "gatehouse",
            "--smtp-url",
            "smtp+starttls://me@mail.example.org",
            "--mail-from",
            "Site <login@example.org>",
        ]);
        assert_eq!(c.smtp_url.as_ref().map(|u| u.port), Some(587));
        assert_eq!(
            c.mail_from.map(|m| m.email.to_string()).as_deref(),
            Some("login@example.org")
        );
        let err = Config::try_parse_from(["gatehouse", "--smtp-url", "http://u:hunter2@x"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--smtp-url") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(Config::try_parse_from(["gatehouse", "--mail-from", "nobody"]).is_err());
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
}
