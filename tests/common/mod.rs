//! Test support shared by the black-box suites, one module per concern: [`server`] starts the
//! real `gatehouse` binary on a free loopback port with a temporary database, [`http`] drives
//! its pages, [`admin`] runs its commands, [`audit`] and [`metrics`] read what it recorded,
//! [`files`] checks what it left on disk, and [`proxy`] puts deploy/'s real nginx or Caddy in
//! front of it and of an [`upstream`] app, on [`ports`] of their own; [`smtp`] is a real SMTP server (aiosmtpd) whose mail they read; [`postgres`] gives each test a
//! PostgreSQL database of its own, or a private server it may stop and start; [`sql`] reads and
//! writes a test's database on either backend. Everything is
//! re-exported here, so a suite writes `common::TestApp` or `common::sign_in` whichever module
//! holds it.
// Each suite uses a different part of this support code.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod audit;
pub mod files;
pub mod http;
pub mod metrics;
pub mod passkey_site;
pub mod ports;
pub mod postgres;
pub mod proxy;
pub mod server;
pub mod smtp;
pub mod soft_authenticator;
pub mod sql;
pub mod upstream;

pub use admin::*;
pub use audit::*;
pub use files::*;
pub use http::*;
pub use metrics::*;
pub use passkey_site::*;
pub use ports::*;
pub use postgres::*;
pub use proxy::*;
pub use server::*;
pub use smtp::*;
pub use sql::*;
pub use upstream::*;
