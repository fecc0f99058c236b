//! Admin commands (`gatehouse user …`, `session …`, `db …`, `import-seed`, `audit`): they open
//! the same database as the server, may run while it does, and take effect on it at once,
//! because the server keeps no state that these commands change behind its back (sessions are
//! read per request; an unlock is a row the server checks before refusing a locked name).
//!
//! Exit codes: 0 done, 1 refused or failed (message on stderr), 2 usage (clap).

use std::process::ExitCode;

use crate::cli::{Command, Config};

/// A refusal or failure: printed on stderr, exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Kdf(#[from] crate::password::KdfError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub fn run(config: &Config, command: Command) -> ExitCode {
    // Admin output is the command's own; the log only says what went wrong.
    crate::server::init_tracing(if config.log_level == "info" {
        "warn"
    } else {
        &config.log_level
    });
    let result: Result<(), AdminError> =
        Err(AdminError::Refused(format!("{command:?}: not implemented yet")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}
