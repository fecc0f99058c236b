//! The server under test: the real `gatehouse` binary on a free loopback port with a temporary
//! database ([`TestApp`]), its log, restarts and stops, and the ports it listens on.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admin::AdminRun;
use super::postgres::{Backend, fresh_pg_database, random_key_hex};

/// Tiny Argon2 costs keep the suites fast; the KDF itself is tested with real costs in units.
pub const FAST_KDF: &[&str] = &["--argon2-m", "64", "--argon2-t", "1", "--argon2-p", "1"];

/// A running server process, killed on drop.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    /// Pass `--database`; when false the server uses its default path in its working directory.
    explicit_database: bool,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// The program: the `gatehouse` binary, or an example built on the library.
    program: PathBuf,
    /// A PostgreSQL database (`postgres://…`) instead of the SQLite file in `dir`.
    db_url: Option<String>,
    /// GATEHOUSE_SECRET_KEY (hex), which instances sharing a PostgreSQL database must share.
    key_hex: Option<String>,
}

impl TestApp {
    /// Starts the server with fast KDF costs and `extra` flags (later flags win).
    pub fn spawn(extra: &[&str]) -> Self {
        Self::spawn_in(tempfile::tempdir().expect("temp dir"), extra)
    }

    /// Starts the server in a fresh working directory with only `--bind` and fast KDF costs,
    /// so it uses its default database and key file paths.
    pub fn spawn_with_default_paths() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = FAST_KDF.iter().map(|s| s.to_string()).collect();
        let mut app = Self {
            address: String::new(),
            port: 0,
            dir,
            args,
            explicit_database: false,
            child: None,
            log: Arc::default(),
            program: PathBuf::from(env!("CARGO_BIN_EXE_gatehouse")),
            db_url: None,
            key_hex: None,
        };
        app.start(0);
        app
    }

    /// What `--database` says: the SQLite file in `dir`, or the PostgreSQL URL.
    pub fn database(&self) -> PathBuf {
        match &self.db_url {
            Some(url) => PathBuf::from(url),
            None => self.dir.path().join("users.database"),
        }
    }

    /// Starts the server on a fresh database of `backend` (PostgreSQL: from
    /// `GATEHOUSE_TEST_PG`, with a random secret key in the environment).
    pub fn spawn_on(backend: Backend, extra: &[&str]) -> Self {
        match backend {
            Backend::Sqlite => Self::spawn(extra),
            Backend::Postgres => Self::spawn_pg(&fresh_pg_database(), &random_key_hex(), extra),
        }
    }

    /// Starts the server on the PostgreSQL database `url` with secret key `key_hex`.
    pub fn spawn_pg(url: &str, key_hex: &str, extra: &[&str]) -> Self {
        let mut args: Vec<String> = FAST_KDF.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut app = Self {
            address: String::new(),
            port: 0,
            dir: tempfile::tempdir().expect("temp dir"),
            args,
            explicit_database: true,
            child: None,
            log: Arc::default(),
            program: PathBuf::from(env!("CARGO_BIN_EXE_gatehouse")),
            db_url: Some(url.to_owned()),
            key_hex: Some(key_hex.to_owned()),
        };
        app.start(0);
        app
    }

    /// Another instance on this one's PostgreSQL database, with the same key (and `extra`).
    pub fn spawn_beside(&self, extra: &[&str]) -> Self {
        let url = self
            .db_url
            .as_deref()
            .expect("instances share a PostgreSQL database");
        Self::spawn_pg(url, self.key_hex.as_deref().expect("a key"), extra)
    }

    /// Which backend this server stores in.
    pub fn backend(&self) -> Backend {
        if self.db_url.is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// GATEHOUSE_SECRET_KEY given to the server, if any (admin commands get it too).
    pub fn key_hex(&self) -> Option<&str> {
        self.key_hex.as_deref()
    }

    fn start(&mut self, port: u16) {
        let bind = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&self.program);
        cmd.env_clear()
            .env("GATEHOUSE_LOG", "info,gatehouse=debug")
            .current_dir(self.dir.path())
            .envs(self.key_hex.iter().map(|k| ("GATEHOUSE_SECRET_KEY", k)))
            .arg("--bind")
            .arg(&bind)
            .args(if self.explicit_database {
                vec!["--database".into(), self.database().into_os_string()]
            } else {
                vec![]
            })
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start gatehouse");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = listening_url(&line) {
                    let _ = tx.send(url);
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start; log:\n{}", self.log()));
        self.port = url.rsplit(':').next().unwrap().parse().unwrap();
        self.address = url;
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL) and starts it again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        // The port may linger briefly in the kernel; retry a few times.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let probe = std::net::TcpListener::bind(("127.0.0.1", port));
            if probe.is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.start(port);
    }

    /// Restarts with other flags (after the fast-KDF defaults) on the same database and key.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.args = FAST_KDF
            .iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect();
        self.restart();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's process id (for killing it from another task).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) for the server's log to contain `needle`; the log is read by a
    /// background thread, so a line may arrive just after the response.
    pub async fn log_contains(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A client with its own cookie jar that does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Opens the SQLite file directly, as an outside reader would.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.database()).unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `http://ADDR` or `https://ADDR` from the server's "listening on" log line.
fn listening_url(line: &str) -> Option<String> {
    ["http", "https"].iter().find_map(|scheme| {
        let marker = format!("listening on {scheme}://");
        let rest = line.split(&marker).nth(1)?;
        Some(format!("{scheme}://{}", rest.trim()))
    })
}

impl TestApp {
    /// Starts `examples/NAME.rs` (built by `cargo build --examples`, which scripts/test.sh
    /// runs first) as `spawn` starts the server: it takes the same flags.
    pub fn spawn_example(name: &str, extra: &[&str]) -> Self {
        let program = example_path(name);
        assert!(
            program.exists(),
            "{} is missing: run `cargo build --examples` first",
            program.display()
        );
        let mut args: Vec<String> = FAST_KDF.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut app = Self {
            address: String::new(),
            port: 0,
            dir: tempfile::tempdir().expect("temp dir"),
            args,
            explicit_database: true,
            child: None,
            log: Arc::default(),
            program,
            db_url: None,
            key_hex: None,
        };
        app.start(0);
        app
    }

    /// Like `spawn`, in a directory the test prepared (e.g. with TLS certificate files).
    pub fn spawn_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let mut args: Vec<String> = FAST_KDF.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut app = Self {
            address: String::new(),
            port: 0,
            dir,
            args,
            explicit_database: true,
            child: None,
            log: Arc::default(),
            program: PathBuf::from(env!("CARGO_BIN_EXE_gatehouse")),
            db_url: None,
            key_hex: None,
        };
        app.start(0);
        app
    }

    /// Sends SIGTERM and waits for the process to exit (at most 60 s, then SIGKILL and a
    /// panic), as systemd stops the service.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait for gatehouse") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no exit 60 s after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl TestApp {
    /// `http://HOST:PORT` of the metrics server, from its `metrics on http://…/metrics` log
    /// line. The server logs it before `listening on`, so it is in the log once `spawn` returns.
    pub fn metrics_address(&self) -> Option<String> {
        let log = self.log();
        let rest = log.split("metrics on http://").nth(1)?;
        let addr = rest.split("/metrics").next()?;
        Some(format!("http://{}", addr.trim()))
    }
}

/// The TCP ports process `pid` listens on (Linux: its socket fds matched against
/// `/proc/PID/net/tcp{,6}` rows in state LISTEN), sorted.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let t = target.to_string_lossy();
                    Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, column 9 is the inode.
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Starts `gatehouse serve` on `database` (a free port, fast KDF costs, nothing else) and
/// waits for it to exit, at most `limit`: `None` if it was still running then (it is killed).
/// For servers expected to refuse to start.
pub fn serve_expecting_exit(database: &std::path::Path, limit: Duration) -> Option<AdminRun> {
    let database = database.to_str().expect("a UTF-8 database path");
    serve_with_args_expecting_exit(&["--database", database], limit)
}

/// Like [`serve_expecting_exit`], with `args` (which name the database) for the server.
pub fn serve_with_args_expecting_exit(args: &[&str], limit: Duration) -> Option<AdminRun> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(FAST_KDF)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gatehouse serve");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait for gatehouse").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("gatehouse output").into())
}

/// Where cargo puts example `name`, beside the `gatehouse` binary of this build.
pub fn example_path(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_BIN_EXE_gatehouse"))
        .parent()
        .expect("target dir")
        .join("examples")
        .join(name)
}
