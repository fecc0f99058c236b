//! The `gatehouse` binary: serves the site, or runs one admin command against its database.

use clap::Parser;
use gatehouse::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => {
            gatehouse::server::init_tracing(&cli.config.log_level);
            match gatehouse::run(cli.config) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("gatehouse: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Some(command) => gatehouse::admin::run(&cli.config, command),
    }
}
