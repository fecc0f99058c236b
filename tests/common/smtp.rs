//! A real SMTP server for the mail tests: Debian's `python3-aiosmtpd` on a loopback port,
//! delivering into a Maildir ([`SmtpSink::start_on`]) or refusing every recipient with 550
//! ([`SmtpSink::refusing_on`], `tests/fixtures/smtp_refuse.py`). Killed on drop. Delivered
//! messages are decoded by Python's `email` package (`tests/fixtures/read_maildir.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One delivered message, decoded.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub raw: String,
}

/// A running aiosmtpd, killed on drop.
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The Python with aiosmtpd: Debian's (`/usr/bin/python3`, where `python3-aiosmtpd` puts
/// it) before whatever `python3` comes first on PATH. Missing: the test fails and says so.
pub fn python() -> &'static str {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|py| {
                Command::new(py)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect(
                "no python3 with aiosmtpd: install Debian's python3-aiosmtpd \
                 (scripts/test.sh does)",
            )
    })
}

impl SmtpSink {
    /// A sink on a free port.
    pub fn start() -> Self {
        Self::start_on(super::ports::free_port())
    }

    /// A sink delivering into a Maildir, on `port`.
    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let maildir = dir.path().join("Maildir");
        let mut cmd = Command::new(python());
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir);
        Self::spawn(cmd, port, dir)
    }

    /// A sink that answers every recipient `550`, on `port`.
    pub fn refusing_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = dir.path().join("refused");
        let mut cmd = Command::new(python());
        cmd.env("PYTHONPATH", fixtures())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "smtp_refuse.Refuse"])
            .arg(&count);
        Self::spawn(cmd, port, dir)
    }

    fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let mut sink = Self { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!("aiosmtpd on port {port} exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        sink
    }

    /// `smtp://127.0.0.1:PORT`, for `--smtp-url`.
    pub fn url(&self) -> String {
        smtp_url(self.port)
    }

    /// The messages delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let out = Command::new(python())
            .arg(fixtures().join("read_maildir.py"))
            .arg(self.dir.path().join("Maildir"))
            .output()
            .expect("run read_maildir.py");
        assert!(
            out.status.success(),
            "read_maildir.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("read_maildir.py prints JSON")
    }

    /// Waits (up to `limit`) until at least `n` messages arrived, and returns them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many recipients a [`SmtpSink::refusing_on`] sink refused.
    pub fn refusals(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("refused"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `smtp://127.0.0.1:PORT`.
pub fn smtp_url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

/// The mail settings for a server or command sending through the SMTP server on `port`:
/// retries start at 100 ms, and links point at an address nothing listens on.
pub fn mail_flags(port: u16) -> Vec<String> {
    let url = smtp_url(port);
    [
        "--smtp-url",
        url.as_str(),
        "--public-url",
        "http://127.0.0.1:9",
        "--mail-from",
        "Site <site@example.org>",
        "--mail-retry-base",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Queues a test mail to `address` in the outbox of `database` (`mail test --queue`), sealed
/// under the key the environment or the key file beside the database gives.
pub fn queue_mail(database: &Path, port: u16, address: &str, env: &[(&str, &str)]) {
    let flags = mail_flags(port);
    let mut args = vec!["mail", "test", address, "--queue"];
    args.extend(flags.iter().map(String::as_str));
    let run = super::admin_with_env(database, env, &args, "");
    assert_eq!(run.code, 0, "mail test --queue: {run:?}");
}
