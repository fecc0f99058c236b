//! Gatehouse inside an actix-web app (docs/behaviour.md §10.3): [`Gatehouse::open`] does what
//! `gatehouse serve` does before it listens, [`Site::app`] is an `App` with Gatehouse's pages
//! mounted that the app adds its own routes to, [`SignedIn`] protects the app's handlers, and
//! [`Gatehouse::serve`] runs the server with Gatehouse's background work alongside.
//!
//! ```no_run
//! use actix_web::{HttpResponse, HttpServer, web};
//! use gatehouse::{Config, Gatehouse, SignedIn};
//!
//! async fn dashboard(user: SignedIn) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("Hello, {}", user.username()))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config::from_args(); // --bind, --database, ... and GATEHOUSE_* variables
//!     let gatehouse = Gatehouse::open(&config)?;
//!     let site = gatehouse.site();
//!     let server = HttpServer::new(move || {
//!         site.app().route("/dashboard", web::get().to(dashboard))
//!     })
//!     .bind(config.bind)?
//!     .run();
//!     gatehouse.serve(server).await?;
//!     Ok(())
//! }
//! ```

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::security::password::{Kdf, KdfPool};
use crate::security::secret::{self, SecretKey};
use crate::security::session::SessionPolicy;
use crate::security::throttle::AddressGuard;
use crate::state::{AppState, Parts};
use crate::store::Store;
use crate::web::members::Members;

/// Why a server (or an app embedding Gatehouse) did not start; shown as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Key(#[from] crate::security::secret::SecretKeyError),
    #[error(transparent)]
    Kdf(#[from] crate::security::password::KdfError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Lock(#[from] crate::server_lock::ServerLockError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An open Gatehouse: its database (held by this process alone, as `gatehouse serve` holds
/// it), secret key, password hashing pool and settings. Dropping it releases the database.
pub struct Gatehouse {
    site: Site,
    /// One server per SQLite database, for as long as this one lives (none on PostgreSQL).
    lock: Option<crate::server_lock::ServerLock>,
}

/// What every worker's `App` is built from: cheap to clone, `Send`, so it can move into
/// `HttpServer::new`'s factory.
#[derive(Clone)]
pub struct Site {
    state: web::Data<AppState>,
    members: Option<Members>,
    hsts: bool,
    http_metrics: crate::web::metrics::HttpMetrics,
}

/// What [`check_settings`] found.
pub(crate) struct Checked {
    pub members: Option<Members>,
    pub forward: crate::security::forward::Settings,
    pub mail: Option<crate::mail::MailSettings>,
}

/// Refuses settings that cannot work, before anything is opened.
pub(crate) fn check_settings(config: &Config) -> Result<Checked, StartError> {
    let members = Members::from_config(config).map_err(StartError::Config)?;
    let forward = crate::security::forward::settings(
        config.public_url.as_deref(),
        &config.forward_domains,
        config.cookie_domain.as_deref(),
    )
    .map_err(StartError::Config)?;
    let mail = config.mail_settings().map_err(StartError::Config)?;
    if config.email_verification == crate::config::EmailVerification::Required
        && (mail.is_none() || config.public_url.is_none())
    {
        return Err(StartError::Config(
            "--email-verification required needs --smtp-url and --public-url (the links are \
             mailed)"
                .into(),
        ));
    }
    Ok(Checked {
        members,
        forward,
        mail,
    })
}

/// Refuses a key other than the one the database was first used with: servers with different
/// keys would reject each other's cookies and could not open the mail the other sealed.
fn check_key(store: &Store, key: &SecretKey) -> Result<(), StartError> {
    let mine = key.fingerprint();
    let stored = std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| crate::store::StoreError::Backend(e.to_string()))?
                .block_on(store.claim_key(&mine))
        })
        .join()
        .unwrap_or_else(|_| {
            Err(crate::store::StoreError::Backend(
                "key check panicked".into(),
            ))
        })
    })?;
    if stored != mine {
        return Err(StartError::Config(format!(
            "the secret key (fingerprint {mine}) is not the one this database was used with \
             (fingerprint {stored}): give every instance the same GATEHOUSE_SECRET_KEY, or \
             replace the key with `gatehouse key rotate`"
        )));
    }
    Ok(())
}

/// A password in `--database` shows in `ps`: accepted, with a warning (never the password).
fn warn_about_password_in_flag(config: &Config) {
    let from_env = std::env::var_os("GATEHOUSE_DATABASE")
        .is_some_and(|v| std::path::Path::new(&v) == config.database);
    if !from_env
        && config
            .database
            .to_str()
            .is_some_and(crate::store::postgres::has_password)
    {
        tracing::warn!(
            "the --database URL holds a password, which `ps` shows to every local user: put \
             it in PGPASSWORD or GATEHOUSE_DATABASE instead"
        );
    }
}

/// Passkeys need a host name in `--public-url` (an IP address cannot be a WebAuthn RP ID).
fn warn_about_passkeys(config: &Config) {
    if let Some(url) = config.public_url.as_deref()
        && crate::security::passkey::RelyingParty::from_url(url).is_none()
    {
        tracing::warn!(
            "--public-url {url} has no host name to serve as the passkeys' relying party ID: \
             passkeys are off (docs/operations.md, \"Passkeys\")"
        );
    }
}

impl Gatehouse {
    /// Checks the settings, takes the database's one-server lock, opens (and upgrades) the
    /// database, loads or creates the secret key and starts the password hashing pool.
    pub fn open(config: &Config) -> Result<Self, StartError> {
        let Checked {
            members,
            forward,
            mail,
        } = check_settings(config)?;
        for warning in &forward.warnings {
            tracing::warn!("{warning}");
        }
        warn_about_passkeys(config);
        let shared = config.database_is_url();
        // Before the store: a second server touches nothing (not even a migration). Servers
        // on PostgreSQL share their database by design (docs/behaviour.md §12).
        let lock = if shared {
            None
        } else {
            Some(crate::server_lock::ServerLock::acquire(&config.database)?)
        };
        let env_key = std::env::var(secret::ENV_VAR).ok();
        if shared && env_key.is_none() && config.secret_key_file.is_none() {
            return Err(StartError::Config(format!(
                "with PostgreSQL every instance needs the same secret key: set {} (hex) or \
                 --secret-key-file",
                secret::ENV_VAR
            )));
        }
        if shared {
            warn_about_password_in_flag(config);
        }
        let store = Store::open_with(&config.database, &config.pg_options())?;
        let key = SecretKey::load(env_key.as_deref(), &config.secret_key_path())?;
        check_key(&store, &key)?;
        let mail = match mail {
            Some(settings) => Some(std::sync::Arc::new(
                crate::mail::Mailer::new(settings, &key, config.mail_retry_base)
                    .map_err(StartError::Config)?,
            )),
            None => None,
        };

        let started = Instant::now();
        let kdf = Kdf::new(config.kdf_params())?; // hashes its dummy once: a cost sample
        let per_hash = started.elapsed().as_secs_f64();
        let capacity = config.lock_max_entries.unwrap_or_else(|| {
            crate::security::faillock::default_capacity(
                config.kdf_threads,
                per_hash,
                config.lock_window,
            )
        });
        tracing::info!(
            kdf_threads = config.kdf_threads,
            kdf_queue = config.kdf_queue,
            ms_per_hash = (per_hash * 1000.0).round(),
            lock_capacity = capacity,
            "password hashing ready"
        );
        let audit = std::sync::Arc::new(crate::audit::AuditLog::new(
            store.clone(),
            config.lock_window.max(config.ip_window),
        ));
        let kdf = KdfPool::new(kdf, config.kdf_threads, config.kdf_queue)
            .with_wait_observer(crate::metrics::kdf_wait);
        let state = AppState::build(Parts {
            store,
            kdf,
            clock: std::sync::Arc::new(SystemClock),
            key,
            sessions: SessionPolicy {
                secure: config.secure(),
                idle: config.session_idle,
                max: config.session_max,
                domain: forward.cookie_domain.clone(),
            },
            audit,
            guard: AddressGuard::new(
                config.ip_failures,
                config.ip_window,
                config.ip_kdf_rate,
                config.ip_max_entries,
            ),
            lock_attempts: config.lock_attempts,
            lock_window: config.lock_window,
            lock_capacity: capacity,
            public_url: config.public_url.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            forward: forward.policy,
            body_timeout: config.client_timeout,
            sign_up_open: config.sign_up == crate::cli::SignUp::Open,
            audit_retention: config.audit_retention,
            mail,
            email_verification: config.email_verification,
            reset: crate::accounts::ResetPolicy {
                ttl: config.reset_ttl,
                mails_per_hour: config.reset_mails_per_hour,
            },
        });
        Ok(Self {
            site: Site {
                state,
                members,
                hsts: config.secure(),
                http_metrics: crate::web::metrics::HttpMetrics::new(false),
            },
            lock,
        })
    }

    /// What to build each worker's `App` from (see [`Site::app`]).
    pub fn site(&self) -> Site {
        self.site.clone()
    }

    pub(crate) fn state(&self) -> &web::Data<AppState> {
        &self.site.state
    }

    /// Runs `server` to its end with Gatehouse's background work alongside (expired sessions
    /// and old audit events purged, "last seen" times written), then writes what is pending
    /// and releases the database.
    pub async fn serve(self, server: Server) -> std::io::Result<()> {
        self.serve_with(server, None).await
    }

    /// [`Gatehouse::serve`], stopping a second server (the private metrics one) at the end.
    pub(crate) async fn serve_with(
        self,
        server: Server,
        also: Option<Server>,
    ) -> std::io::Result<()> {
        let state = self.site.state.clone();
        actix_web::rt::spawn(crate::housekeeping::housekeeping(state.clone()));
        actix_web::rt::spawn(crate::housekeeping::flush_touches(state.clone()));
        if let Some(mailer) = state.mail.clone() {
            actix_web::rt::spawn(crate::mail::sender::run(
                state.store.clone(),
                mailer,
                state.audit.clone(),
                state.clock.clone(),
            ));
        }
        // The metrics server handles no signals: it ends when the public server has.
        let also = also.map(|server| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let served = server.await;
        if let Some(handle) = also {
            handle.stop(true).await;
        }
        state.audit.flush();
        if let Err(e) = state.store.flush_touches().await {
            tracing::warn!("last-seen times lost at shutdown: {e}");
        }
        // Held until the last write is done.
        drop(self.lock);
        served
    }
}

impl Site {
    pub(crate) fn with_http_metrics(mut self, on: bool) -> Self {
        self.http_metrics = crate::web::metrics::HttpMetrics::new(on);
        self
    }

    /// An `App` serving Gatehouse's pages (sign-up, sign-in, account, the JSON API,
    /// forward-auth, the members folder) with its security headers and error pages on every
    /// answer, the app's own routes included. Add routes with `.route(…)` / `.service(…)`;
    /// a path Gatehouse already serves (e.g. `/`, `/welcome`, `/account`) stays Gatehouse's.
    pub fn app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody + use<>>,
            Error = actix_web::Error,
            InitError = (),
        > + use<>,
    > {
        // Actix builds each worker's App on that worker's thread.
        self.state.store.adopt_worker();
        let members = self.members.clone();
        App::new()
            .app_data(self.state.clone())
            .wrap(actix_web::middleware::from_fn(
                crate::web::respond::error_pages,
            ))
            .wrap(actix_web::middleware::from_fn(
                crate::web::session::drop_shadowed_session,
            ))
            .wrap(crate::web::security_headers::headers(self.hsts))
            .wrap(self.http_metrics)
            .configure(move |cfg| crate::web::members::configure(cfg, members))
            .configure(crate::web::routes::configure)
    }
}

/// The signed-in user of a request, for the app's own handlers: a handler that takes it runs
/// only for a valid session. Anonymous (or expired, revoked, disabled) requests get a 303 to
/// the sign-in page with a signed `next` back to the request's path and query, or, under
/// `/api/`, a 401 JSON answer.
#[derive(Clone, Debug)]
pub struct SignedIn {
    user_id: i64,
    username: String,
    full_name: Option<String>,
    email: Option<String>,
    email_verified: bool,
    groups: Vec<String>,
    session_id: i64,
}

impl SignedIn {
    /// The user's permanent numeric id (never reused).
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// The canonical (lower-case) username.
    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn full_name(&self) -> Option<&str> {
        self.full_name.as_deref()
    }

    /// The account's email address, as the user gave it (see [`SignedIn::email_verified`]).
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// Whether the user confirmed [`SignedIn::email`] through the link mailed to it.
    pub fn email_verified(&self) -> bool {
        self.email_verified
    }

    /// The user's groups (`gatehouse user group add`), sorted.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn in_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name)
    }

    /// The session's public id, as `/account` lists it (not the cookie's secret value).
    pub fn session_id(&self) -> i64 {
        self.session_id
    }
}

impl FromRequest for SignedIn {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let inner = crate::web::extract::SignedIn::from_request(req, payload);
        Box::pin(async move {
            let signed_in = inner.await?;
            let current = signed_in.current();
            let user = &current.user;
            Ok(SignedIn {
                user_id: user.id,
                username: user.username.clone(),
                full_name: user.full_name.clone(),
                email: user.email.clone(),
                email_verified: current.email_verified,
                groups: current.groups.clone(),
                session_id: current.session_id,
            })
        })
    }
}
