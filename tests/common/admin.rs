//! Admin commands (`gatehouse user …`, `db …`) run as child processes on a test database.

use std::process::{Command, Stdio};

use super::server::{FAST_KDF, TestApp};

/// How an admin command ended.
#[derive(Debug)]
pub struct AdminRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for AdminRun {
    fn from(out: std::process::Output) -> Self {
        AdminRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `gatehouse ARGS` against `database` with fast KDF costs, feeding `stdin` (not a
/// terminal, so passwords are read from its first line).
pub fn admin_at(database: &std::path::Path, args: &[&str], stdin: &str) -> AdminRun {
    admin_with_env(database, &[], args, stdin)
}

/// [`admin_at`] with GATEHOUSE_SECRET_KEY set (a PostgreSQL database has no key file beside it).
pub fn admin_with_key(
    database: &std::path::Path,
    key_hex: Option<&str>,
    args: &[&str],
    stdin: &str,
) -> AdminRun {
    let env: Vec<_> = key_hex
        .map(|k| ("GATEHOUSE_SECRET_KEY", k))
        .into_iter()
        .collect();
    admin_with_env(database, &env, args, stdin)
}

/// [`admin_at`] with only the variables `env` set for the command (nothing is inherited).
pub fn admin_with_env(
    database: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> AdminRun {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .arg("--database")
        .arg(database)
        .args(FAST_KDF)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gatehouse admin command");
    // A command may refuse (and exit) before reading its input: a broken pipe is fine.
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes());
    child
        .wait_with_output()
        .expect("admin command output")
        .into()
}

impl TestApp {
    /// Runs an admin command on this server's database while it runs.
    pub fn admin(&self, args: &[&str], stdin: &str) -> AdminRun {
        admin_with_key(&self.database(), self.key_hex(), args, stdin)
    }

    /// Like [`TestApp::admin`], asserting exit code 0.
    pub fn admin_ok(&self, args: &[&str], stdin: &str) -> AdminRun {
        let run = self.admin(args, stdin);
        assert_eq!(run.code, 0, "gatehouse {args:?}: {run:?}");
        run
    }
}
