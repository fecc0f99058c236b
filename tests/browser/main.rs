//! Real-browser tests: Debian's headless Chromium, driven through chromedriver, against the real
//! server binary (docs/behaviour.md §2, §3). Each test starts its own server (temp database) and
//! browser; the tests take turns so that one Chromium at a time shares the 2-core machine.
//!
//! `gatehouse.test` is mapped to 127.0.0.1 by Chromium's `--host-resolver-rules`, so the same
//! server is seen at `http://127.0.0.1:PORT` (a secure context: Web Crypto exists) and at
//! `http://gatehouse.test:PORT` (not a secure context: the page's own SHA-512 must do). The
//! forward-auth test maps every `*.gatehouse.test` name instead, for its proxy's two hosts.

#[path = "../common/mod.rs"]
mod common;

mod digest_paths;
mod driver;
mod flows;
mod forms;
mod forward;
mod passkeys;
mod phone;
mod recovery;
mod site;
mod two_step;

/// One browser at a time, whatever `--test-threads` says.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
