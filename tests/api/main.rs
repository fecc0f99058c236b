//! Black-box HTTP tests: each starts the real server on a free loopback port with a temporary
//! database and walks the routes of docs/behaviour.md §3–§7 with a real HTTP client.

#[path = "../common/mod.rs"]
mod common;

mod account_delete;
mod admin;
mod audit;
mod bad_input;
mod bench_data;
mod crash;
mod device;
mod email_verification;
mod files;
mod forward_auth;
mod forward_proxies;
mod groups;
mod health;
mod import_seed;
mod instances;
mod json_api;
mod library;
mod load;
mod lock;
mod long_passwords;
mod members;
mod metrics;
mod one_server;
mod outbox;
mod pages;
mod passkey_account;
mod passkeys;
mod password_reset;
mod password_reset_mail;
mod pg_admin;
mod pg_faults;
mod profile;
mod races;
mod redirects;
mod sessions;
mod shutdown;
mod sign_up;
mod slow_clients;
mod storage;
mod throttle;
mod tls;
mod two_step;
