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

//! # As a library
//!
//! An actix-web app can mount Gatehouse and protect its own handlers with the [`SignedIn`]
//! extractor: see [`Gatehouse`] and `examples/members.rs`. That, with [`Config`],
//! [`StartError`] and [`run`], is the public API; the modules below are public for the
//! project's own tests, benchmarks and fuzz targets and carry no stability promise.

#[doc(hidden)]
pub mod accounts;
#[doc(hidden)]
pub mod admin;
#[doc(hidden)]
pub mod audit;
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod clock;
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod domain;
mod embed;
mod housekeeping;
#[doc(hidden)]
pub mod mail;
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod pool;
#[doc(hidden)]
pub mod progress;
#[doc(hidden)]
pub mod security;
#[doc(hidden)]
pub mod server;
#[doc(hidden)]
pub mod server_lock;
#[doc(hidden)]
pub mod state;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod tls;
#[doc(hidden)]
pub mod user_agent;
#[doc(hidden)]
pub mod web;

pub use cli::Config;
pub use embed::{Gatehouse, SignedIn, Site};
pub use server::{Application, StartError, init_tracing as init_logging, run};
