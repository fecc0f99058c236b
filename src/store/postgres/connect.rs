//! Connecting to PostgreSQL: the URL (`--database postgres://…`) with the password from
//! `PGPASSWORD` when the URL has none, TLS through rustls for `sslmode=require`, and a
//! connector that runs each connection's I/O task on a runtime of the store's choosing (its
//! own, or a server worker's for that worker's share of the pool).

use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};

use super::PgOptions;
use crate::store::{Result, StoreError};

/// No TLS, or rustls with the Mozilla roots (webpki-roots): no OpenSSL, as elsewhere.
#[derive(Clone)]
pub enum Tls {
    None,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// Parses `url`; returns the config, the TLS to use and the URL without its password.
pub fn parse(url: &str, options: &PgOptions) -> Result<(Config, Tls, String)> {
    let bad = |why: String| StoreError::Open {
        path: redact(url),
        message: why,
    };
    let mut config = Config::from_str(url).map_err(|e| bad(e.to_string()))?;
    if config.get_password().is_none()
        && let Ok(password) = std::env::var("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_user().is_none() {
        return Err(bad("the URL names no user (postgres://USER@HOST/DB)".into()));
    }
    if config.get_dbname().is_none() {
        return Err(bad(
            "the URL names no database (postgres://USER@HOST/DB)".into()
        ));
    }
    config.connect_timeout(options.connect_timeout);
    config.application_name("gatehouse");
    config.options(format!(
        "-c statement_timeout={}",
        options.timeout.as_millis().max(1)
    ));
    let tls = match config.get_ssl_mode() {
        SslMode::Disable | SslMode::Prefer => {
            // `prefer` would try TLS first: without a certificate check that protects nothing,
            // so it is plain TCP (say `sslmode=require` for TLS).
            config.ssl_mode(SslMode::Disable);
            Tls::None
        }
        _ => {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Tls::Rustls(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        }
    };
    Ok((config, tls, redact(url)))
}

/// Whether the URL itself carries a password (the server warns: `ps` shows it).
pub fn has_password(url: &str) -> bool {
    Config::from_str(url).is_ok_and(|c| c.get_password().is_some())
}

/// What to show of a database URL in messages and logs: rebuilt from what the driver parsed
/// (user, hosts, ports, database), never the text itself, so no password can slip through a
/// spelling the two parsers read differently (found by the `database_url` fuzz target).
pub fn redact(url: &str) -> String {
    match Config::from_str(url) {
        Ok(c) => describe(&c),
        Err(_) => "(a PostgreSQL URL that does not parse)".into(),
    }
}

/// A parsed database URL as [`redact`] shows it: a function of everything but the password.
pub fn describe(c: &Config) -> String {
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let password = if c.get_password().is_some() {
        ":***"
    } else {
        ""
    };
    format!(
        "postgres://{}{password}@{}/{}",
        c.get_user().unwrap_or(""),
        hosts.join(","),
        c.get_dbname().unwrap_or("")
    )
}

/// Opens a connection and spawns its I/O task on `handle`.
pub struct Spawning {
    pub tls: Tls,
    pub handle: tokio::runtime::Handle,
}

impl Spawning {
    pub async fn open(
        config: &Config,
        tls: &Tls,
        handle: &tokio::runtime::Handle,
    ) -> std::result::Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
        macro_rules! spawn_connection {
            ($connection:expr) => {
                handle.spawn(async move {
                    if let Err(e) = $connection.await {
                        tracing::debug!("database connection ended: {e}");
                    }
                })
            };
        }
        match tls {
            Tls::None => {
                let (client, connection) = config.connect(NoTls).await?;
                Ok((client, spawn_connection!(connection)))
            }
            Tls::Rustls(make) => {
                let (client, connection) = config.connect(make.clone()).await?;
                Ok((client, spawn_connection!(connection)))
            }
        }
    }
}

impl Connect for Spawning {
    /// Connects on `handle`'s runtime, whatever the caller's: a socket belongs to the reactor
    /// of the runtime that opened it, and a caller of the shared pool may be a runtime that
    /// stops polling once its call returns (the audit writer's `block_on`, an admin
    /// command's), which would leave the connection's replies unread for good. A worker's own
    /// pool names the worker's runtime, which polls for as long as the worker serves.
    fn connect(
        &self,
        pg_config: &Config,
    ) -> BoxFuture<
        '_,
        std::result::Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let config = pg_config.clone();
        let (tls, handle) = (self.tls.clone(), self.handle.clone());
        Box::pin(async move {
            let opening = self
                .handle
                .spawn(async move { Self::open(&config, &tls, &handle).await });
            match opening.await {
                Ok(opened) => opened,
                // The store's runtime is shutting down: say so as a connection error (the
                // only way to make one is to fail a connection that has no host).
                Err(_) => match Config::new().connect(NoTls).await {
                    Err(e) => Err(e),
                    Ok(_) => unreachable!("a configuration without a host cannot connect"),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for url in [
            "postgres://gh:s3cret@db.example.org:5433/gatehouse",
            "postgresql://gh:s3cret@db.example.org/gatehouse?sslmode=require",
            "postgres://gh@db.example.org/gatehouse?password=s3cret",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("db.example.org"), "{shown}");
        }
        assert!(has_password("postgres://gh:s3cret@h/db"));
        assert!(!has_password("postgres://gh@h/db"));
    }

    #[test]
    fn odd_urls_never_panic() {
        // Found by the `database_url` fuzz target.
        let raw = "postgres://g%1s:///otgres://ostgres://g%1s/?@/@/";
        let _ = redact(raw);
        let _ = has_password(raw);
        let _ = parse(raw, &PgOptions::default());
    }

    #[test]
    fn a_url_must_name_user_and_database() {
        let o = PgOptions::default();
        assert!(parse("postgres://h/db", &o).is_err());
        assert!(parse("postgres://u@h", &o).is_err());
        let (config, tls, _) = parse("postgres://u@h/db", &o).unwrap();
        assert!(matches!(tls, Tls::None));
        assert_eq!(config.get_dbname(), Some("db"));
        let (_, tls, _) = parse("postgres://u@h/db?sslmode=require", &o).unwrap();
        assert!(matches!(tls, Tls::Rustls(_)));
    }
}
