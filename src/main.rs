//! The `gatehouse` binary: serves the site, or runs one admin command against its database.

use gatehouse::cli::Command;

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = gatehouse::cli::parse();
    match cli.command {
        None | Some(Command::Serve) => {
            gatehouse::server::init_tracing(&cli.config.log_level);
            match gatehouse::run(cli.config) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    // One plain line on stderr (where the log goes too), not the same words twice.
                    eprintln!("gatehouse: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Some(command) => gatehouse::admin::run(&cli.config, command),
    }
}

/// glibc's malloc would otherwise keep memory the process no longer uses: it raises its mmap
/// threshold after the first 19 MiB Argon2 buffer is freed, so later buffers come from (and
/// stay in) per-thread arenas, one per thread that ever hashed or queried. A fixed threshold
/// returns every large buffer to the kernel when freed, and two arenas bound the rest.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
