//! Wiring: builds the shared state from the configuration, starts the HTTP server and the
//! background housekeeping (expired sessions, stale lock records).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::security::password::{Kdf, KdfPool};
use crate::security::secret::{self, SecretKey};
use crate::security::session::SessionPolicy;
use crate::security::throttle::AddressGuard;
use crate::state::{AppState, Parts};
use crate::store::Store;

/// How long SIGTERM waits for in-flight requests before the remaining connections are dropped
/// (SIGINT stops at once): longer than the slowest legitimate request (a body may take
/// `--client-timeout`, then a sign-in waits its turn for the KDF). The systemd unit's
/// `TimeoutStopSec` is above it.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Key(#[from] secret::SecretKeyError),
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

pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A bound, not yet running server.
pub struct Application {
    pub port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// The private `/metrics` server (`--metrics-bind`), stopped with the public one.
    metrics: Option<Server>,
    /// One server per database, for as long as this one lives.
    lock: crate::server_lock::ServerLock,
}

impl Application {
    pub fn build(config: &Config) -> Result<Self, StartError> {
        // Settings that cannot work are refused before anything is touched.
        let members =
            crate::web::members::Members::from_config(config).map_err(StartError::Config)?;
        let forward = crate::security::forward::settings(
            config.public_url.as_deref(),
            &config.forward_domains,
            config.cookie_domain.as_deref(),
        )
        .map_err(StartError::Config)?;
        for warning in &forward.warnings {
            tracing::warn!("{warning}");
        }
        // First, so a bad certificate or key is reported before any other start-up work.
        let tls = crate::tls::server_config(config)?;
        // Before the store: a second server touches nothing (not even a migration).
        let lock = crate::server_lock::ServerLock::acquire(&config.database)?;
        let store = Store::open(&config.database)?;
        let env_key = std::env::var(secret::ENV_VAR).ok();
        let key = SecretKey::load(env_key.as_deref(), &config.secret_key_path())?;

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
        });

        // Before the public listener: its `metrics on` line then precedes `listening on`,
        // which is what tests (and scripts) wait for.
        let metrics = config
            .metrics_bind
            .map(|addr| {
                let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
                Ok::<_, StartError>(crate::web::metrics::server(listener, state.clone())?)
            })
            .transpose()?;
        let http_metrics = crate::web::metrics::HttpMetrics::new(metrics.is_some());

        let listener = TcpListener::bind(config.bind).map_err(|source| StartError::Bind {
            addr: config.bind.to_string(),
            source,
        })?;
        let addr = listener.local_addr()?;
        let app_state = state.clone();
        let hsts = config.secure();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::web::respond::error_pages,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::web::session::drop_shadowed_session,
                ))
                .wrap(crate::web::security_headers::headers(hsts))
                .wrap(http_metrics)
                .configure(|cfg| crate::web::members::configure(cfg, members.clone()))
                .configure(crate::web::routes::configure)
        })
        .workers(config.workers.max(1))
        // Slow clients: the head must arrive within the timeout (else 408); bodies have the
        // same budget in `forms::read_body`. Header size is capped by actix at 32 KiB / 96
        // headers, above the 16 KiB docs/behaviour.md §6 guarantees.
        .client_request_timeout(config.client_timeout)
        .client_disconnect_timeout(Duration::from_secs(2))
        .keep_alive(Duration::from_secs(30))
        .max_connections(config.max_connections)
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs());
        let (server, scheme) = match tls {
            Some(tls) => (server.listen_rustls_0_23(listener, tls)?, "https"),
            None => (server.listen(listener)?, "http"),
        };
        let server = server.run();
        tracing::info!("listening on {scheme}://{addr}");
        Ok(Self {
            port: addr.port(),
            server,
            state,
            metrics,
            lock,
        })
    }

    /// Serves until the server stops, with housekeeping alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = self.state.clone();
        actix_web::rt::spawn(housekeeping(state.clone()));
        actix_web::rt::spawn(flush_touches(state.clone()));
        // The metrics server handles no signals: it ends when the public server has.
        let metrics = self.metrics.map(|server| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let served = self.server.await;
        if let Some(handle) = metrics {
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

/// Writes batched "last seen" times: often enough that a session's stored time lags its use by
/// well under the idle limit (touches happen at most every idle/4), rarely enough to be one
/// small transaction instead of a write per page view.
async fn flush_touches(state: web::Data<AppState>) {
    let every = Duration::from_millis(state.sessions.touch_interval_ms().clamp(50, 1_000) as u64);
    let mut tick = actix_web::rt::time::interval(every);
    loop {
        tick.tick().await;
        match state.store.flush_touches().await {
            Ok(_) => {}
            Err(e) => tracing::debug!("last-seen update deferred: {e}"),
        }
    }
}

/// Purges expired sessions and stale lock records, at most every minute and at least four
/// times per idle period.
async fn housekeeping(state: web::Data<AppState>) {
    let every = Duration::from_millis(state.sessions.touch_interval_ms().max(1_000) as u64);
    let mut tick = actix_web::rt::time::interval(every);
    loop {
        tick.tick().await;
        let now = state.clock.now();
        state.lock.sweep(now).await;
        state.device_lock.sweep(now).await;
        state.guard.sweep(now).await;
        let (ip_failures, ip_buckets) = state.guard.sizes().await;
        tracing::debug!(
            lock_records = state.lock.records().await,
            device_records = state.device_lock.records().await,
            ip_failures,
            ip_buckets,
            rss_kib = crate::metrics::rss_kib().unwrap_or(0),
            "abuse tables"
        );
        let idle_ms = state.sessions.idle.as_millis() as i64;
        let now = now.as_ms();
        match state.store.purge_expired_sessions(now, idle_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired sessions deleted"),
            Err(e) => tracing::warn!("session purge failed: {e}"),
        }
        let before = now.saturating_sub(state.audit_retention.as_millis() as i64);
        match state.store.purge_audit(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "old audit events deleted"),
            Err(e) => tracing::warn!("audit purge failed: {e}"),
        }
    }
}

/// Builds and serves; the entry point of the binary.
pub fn run(config: Config) -> Result<(), StartError> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(&config)?;
        app.run_until_stopped().await?;
        Ok(())
    })
}
