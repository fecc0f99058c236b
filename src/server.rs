//! Wiring: builds the shared state from the configuration, starts the HTTP server and the
//! background housekeeping (expired sessions, stale lock records).

use std::net::TcpListener;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::dev::Server;

use crate::config::Config;
use crate::embed::Gatehouse;

/// How long SIGTERM waits for in-flight requests before the remaining connections are dropped
/// (SIGINT stops at once): longer than the slowest legitimate request (a body may take
/// `--client-timeout`, then a sign-in waits its turn for the KDF). The systemd unit's
/// `TimeoutStopSec` is above it.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);

pub use crate::embed::StartError;

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

/// A bound, not yet running server: Gatehouse's own routes only, on `--bind`.
pub struct Application {
    pub port: u16,
    server: Server,
    gatehouse: Gatehouse,
    /// The private `/metrics` server (`--metrics-bind`), stopped with the public one.
    metrics: Option<Server>,
}

impl Application {
    pub fn build(config: &Config) -> Result<Self, StartError> {
        // Settings that cannot work are refused before anything is touched.
        crate::embed::check_settings(config)?;
        // First, so a bad certificate or key is reported before any other start-up work.
        let tls = crate::tls::server_config(config)?;
        let gatehouse = Gatehouse::open(config)?;
        let state = gatehouse.state().clone();

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
        let site = gatehouse.site().with_http_metrics(metrics.is_some());

        let listener = TcpListener::bind(config.bind).map_err(|source| StartError::Bind {
            addr: config.bind.to_string(),
            source,
        })?;
        let addr = listener.local_addr()?;
        let server = HttpServer::new(move || site.app())
            .workers(config.workers.max(1))
            // Slow clients: the head must arrive within the timeout (else 408); bodies have
            // the same budget in `forms::read_body`. Header size is capped by actix at 32 KiB /
            // 96 headers, above the 16 KiB docs/behaviour.md §6 guarantees.
            .client_request_timeout(config.client_timeout)
            .client_disconnect_timeout(Duration::from_secs(2))
            .keep_alive(Duration::from_secs(30))
            .max_connections(config.max_connections)
            // A streamed body (a members-folder file) follows its head in a second write:
            // with Nagle on, it waited for the client's delayed ACK (~40 ms a response).
            .tcp_nodelay(true)
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
            gatehouse,
            metrics,
        })
    }

    /// Serves until the server stops, with housekeeping alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.gatehouse.serve_with(self.server, self.metrics).await
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
