//! The `gatehouse` binary: parses the command line and serves the site.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = gatehouse::Config::parse();
    gatehouse::server::init_tracing(&config.log_level);
    match gatehouse::run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gatehouse: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
