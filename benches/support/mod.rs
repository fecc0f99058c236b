//! Shared by the benchmarks: the release server on a free loopback port, and small helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The server process

/// The release server on a free loopback port with a fresh database; killed on drop (also
/// when the benchmark panics).
pub struct Server {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

fn server_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("release").join("gatehouse");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --release --locked` first (the bench scripts do)",
        bin.display()
    );
    bin
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (child, addr) = launch(dir.path(), extra);
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Stops the server and starts it again on the same database with `extra` flags (e.g.
    /// other Argon2 costs); it listens on a new port.
    pub fn restart(&mut self, extra: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = launch(self._dir.path(), extra);
        self.child = child;
        self.addr = addr;
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's SQLite file.
    pub fn database(&self) -> PathBuf {
        self._dir.path().join("users.database")
    }
}

/// Starts the release server in `dir` on its database there; returns it and its address.
fn launch(dir: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let mut cmd = Command::new(server_binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .arg("--bind")
        .arg("127.0.0.1:0")
        .arg("--database")
        .arg(dir.join("users.database"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start target/release/gatehouse");
    let stderr = child.stderr.take().expect("piped stderr");
    // Reads the log to the end (a full pipe would stall the server), reporting the address.
    let (tx, rx) = mpsc::channel::<Result<String, String>>();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut early = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Some(sender) = &tx else { continue };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = sender.send(Ok(addr));
                tx = None;
            } else {
                early.push_str(&line);
                early.push('\n');
            }
        }
        if let Some(sender) = tx {
            let _ = sender.send(Err(early));
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(addr)) => addr,
        Ok(Err(log)) => {
            let _ = child.kill();
            panic!("the server exited before listening:\n{log}")
        }
        Err(e) => {
            let _ = child.kill();
            panic!("the server did not say where it listens: {e}")
        }
    };
    assert!(
        addr.starts_with("127.0.0.1:"),
        "unexpected address {addr:?}"
    );
    (child, addr)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON body for `/api/users` and `/api/session`.
pub fn credentials(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "no samples");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
