//! Gatehouse: a self-hosted, server-rendered sign-up / sign-in website.
//!
//! The browser pre-digests `username ‖ password` with SHA-512 ([`security::digest`]), the server
//! runs Argon2id over that digest on its own bounded thread pool ([`security::password`]), keeps
//! users and hashed session ids in SQLite ([`store`]), locks a username after repeated failures
//! ([`security::faillock`]), follows only HMAC-signed redirects ([`security::redirect`]) and
//! protects every form with a stateless CSRF token ([`security::csrf`]).
//!
//! The layers, top to bottom: [`web`] (HTTP: routes, forms, templates, headers) calls
//! [`accounts`] (the use cases), which apply the rules in [`security`] and [`domain`] and keep
//! their data in [`store`]. [`admin`] is the command-line face of the same. The behaviour the
//! site promises is written down in `docs/behaviour.md`; the README explains the design and its
//! limits.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod pool;
pub mod progress;
pub mod security;
pub mod server;
pub mod server_lock;
pub mod state;
pub mod store;
pub mod tls;
pub mod web;

pub use cli::Config;
pub use server::{Application, run};
