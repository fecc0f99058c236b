//! Test support shared by the black-box suites: start the real `gatehouse` binary on a free
//! loopback port with a temporary database, and small HTTP helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        };
        app.start(0);
        app
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("users.database")
    }

    fn start(&mut self, port: u16) {
        let bind = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.env_clear()
            .env("GATEHOUSE_LOG", "info,gatehouse=debug")
            .current_dir(self.dir.path())
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

/// The value of `name="NAME" value="…"` in a page (hidden inputs).
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// GETs `path` with `client` and returns the body.
pub async fn page_text(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// GETs `path` and returns its CSRF token (the client keeps the cookie).
pub async fn csrf_token(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let html = page_text(app, client, path).await;
    hidden_value(&html, "csrf_token").unwrap_or_else(|| panic!("no csrf_token on {path}:\n{html}"))
}

/// POSTs a form (fields as given, plus the page's CSRF token when `with_csrf`).
pub async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    token: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("csrf_token", token));
    client.post(app.url(path)).form(&all).send().await.unwrap()
}

/// Posts the no-JS sign-up form (plain password, repeated) and returns the response.
pub async fn sign_up_form(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = csrf_token(app, client, "/sign-up").await;
    post_form(
        app,
        client,
        "/sign-up",
        &token,
        &[
            ("username", username),
            ("password", password),
            ("password_repeat", password),
        ],
    )
    .await
}

/// Signs up through the no-JS form (plain password); asserts the 303.
pub async fn sign_up(app: &TestApp, client: &reqwest::Client, username: &str, password: &str) {
    let r = sign_up_form(app, client, username, password).await;
    assert_eq!(
        r.status(),
        303,
        "sign-up of {username}: {}",
        r.text().await.unwrap()
    );
}

/// Signs in through the form with a plain password; returns the response.
pub async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = csrf_token(app, client, "/sign-in").await;
    post_form(
        app,
        client,
        "/sign-in",
        &token,
        &[("username", username), ("password", password)],
    )
    .await
}

/// Three wrong passwords for `username` from `client`, each a 401: the next attempt is locked.
pub async fn fail_three_times(app: &TestApp, client: &reqwest::Client, username: &str) {
    for _ in 0..3 {
        assert_eq!(
            sign_in(app, client, username, "wrong-password")
                .await
                .status(),
            401
        );
    }
}

/// Changes a signed-in client's password through the no-JS account form.
pub async fn change_password(
    app: &TestApp,
    client: &reqwest::Client,
    old: &str,
    new: &str,
) -> reqwest::Response {
    let token = csrf_token(app, client, "/account").await;
    post_form(
        app,
        client,
        "/account/password",
        &token,
        &[
            ("current_password", old),
            ("new_password", new),
            ("new_password_repeat", new),
        ],
    )
    .await
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The session cookie's value from a response's Set-Cookie headers.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix("session=")
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
}

/// A bare client that sends `session=VALUE` by hand (no jar).
pub fn with_cookie(cookie: &str) -> (reqwest::Client, String) {
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (c, format!("session={cookie}"))
}

/// How an admin command ended.
#[derive(Debug)]
pub struct AdminRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gatehouse ARGS` against `database` with fast KDF costs, feeding `stdin` (not a
/// terminal, so passwords are read from its first line).
pub fn admin_at(database: &std::path::Path, args: &[&str], stdin: &str) -> AdminRun {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
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
    let out = child.wait_with_output().expect("admin command output");
    AdminRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl TestApp {
    /// Runs an admin command on this server's database while it runs.
    pub fn admin(&self, args: &[&str], stdin: &str) -> AdminRun {
        admin_at(&self.database(), args, stdin)
    }

    /// Like [`TestApp::admin`], asserting exit code 0.
    pub fn admin_ok(&self, args: &[&str], stdin: &str) -> AdminRun {
        let run = self.admin(args, stdin);
        assert_eq!(run.code, 0, "gatehouse {args:?}: {run:?}");
        run
    }

    /// Audit rows (event, outcome, username, count) as the database holds them, after waiting
    /// up to 5 s for `expect` to hold (the server writes them in the background).
    pub async fn audit_rows(&self, expect: impl Fn(&[AuditRow]) -> bool) -> Vec<AuditRow> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rows = self.read_audit();
            if expect(&rows) || Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn read_audit(&self) -> Vec<AuditRow> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT event, outcome, username, user_id, ip, user_agent, count, at, last_at, detail
                 FROM audit_events ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(AuditRow {
                event: r.get(0)?,
                outcome: r.get(1)?,
                username: r.get(2)?,
                user_id: r.get(3)?,
                ip: r.get(4)?,
                user_agent: r.get(5)?,
                count: r.get(6)?,
                at: r.get(7)?,
                last_at: r.get(8)?,
                detail: r.get(9)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }
}

/// One row of `audit_events`.
#[derive(Clone, Debug)]
pub struct AuditRow {
    pub event: String,
    pub outcome: String,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub count: i64,
    pub at: i64,
    pub last_at: i64,
    pub detail: Option<String>,
}

impl AuditRow {
    pub fn is(&self, event: &str, outcome: &str, username: &str) -> bool {
        self.event == event && self.outcome == outcome && self.username.as_deref() == Some(username)
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

/// GETs `/metrics` from the app's metrics server (which must be on) and returns the text.
pub async fn scrape_metrics(app: &TestApp) -> String {
    let base = app
        .metrics_address()
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{}", app.log()));
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of sample `name` whose labels are exactly `labels` (any order) in metrics text.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want = labels.to_vec();
    want.sort_unstable();
    metric_samples(text, name)
        .into_iter()
        .find(|(got, _)| {
            let mut got: Vec<(&str, &str)> =
                got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            got.sort_unstable();
            got == want
        })
        .map(|(_, v)| v)
}

/// Every sample of `name` in metrics text: (labels, value). Label values are route patterns,
/// methods and outcomes, so they hold no `,` or escaped quote.
pub fn metric_samples(text: &str, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let labels = rest
                .strip_suffix('}')?
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect::<Option<Vec<_>>>()?;
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

/// Sets this test process's umask to the usual 022, which servers and commands started after it
/// inherit: tests of file modes then fail whenever the code leaves a mode to the umask, whatever
/// the umask the suite was started with. Every caller sets the same value, so tests running in
/// parallel do not disturb each other.
pub fn umask_022() {
    // SAFETY: umask(2) only sets the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o022);
    }
}

/// The permission bits of `path` (following symlinks).
pub fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `database` with `suffix` appended to its name (`-wal`, `-shm`, `.lock`).
pub fn beside(database: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Starts `gatehouse serve` on `database` (a free port, fast KDF costs, nothing else) and
/// waits for it to exit, at most `limit`: `None` if it was still running then (it is killed).
/// For servers expected to refuse to start.
pub fn serve_expecting_exit(database: &std::path::Path, limit: Duration) -> Option<AdminRun> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .args(["serve", "--bind", "127.0.0.1:0", "--database"])
        .arg(database)
        .args(FAST_KDF)
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
    let out = child.wait_with_output().expect("gatehouse output");
    Some(AdminRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
