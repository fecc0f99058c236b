//! Gatehouse: a self-hosted, server-rendered sign-up / sign-in website.
//!
//! The browser pre-digests `username ‖ password` with SHA-512 ([`digest`]), the server runs
//! Argon2id over that digest on its own bounded thread pool ([`password`]), keeps users and
//! hashed session ids in SQLite ([`store`]), locks a username after repeated failures
//! ([`faillock`]), follows only HMAC-signed redirects ([`redirect`]) and protects every form with a
//! stateless CSRF token ([`csrf`]). The behaviour contract is `SPEC.md`; the README explains the
//! design and its limits.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod csrf;
pub mod device;
pub mod digest;
pub mod domain;
pub mod error;
pub mod faillock;
pub mod forms;
pub mod metrics;
pub mod password;
pub mod pool;
pub mod progress;
pub mod redirect;
pub mod request;
pub mod routes;
pub mod secret;
pub mod security_headers;
pub mod server;
pub mod server_lock;
pub mod session;
pub mod static_files;
pub mod store;
pub mod templates;
pub mod throttle;
pub mod tls;

pub use cli::Config;
pub use server::{Application, run};
