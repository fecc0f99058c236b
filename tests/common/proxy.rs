//! Real reverse proxies in front of Gatehouse and an app: deploy/'s nginx site and Caddyfile,
//! rendered for a test with as few substitutions as possible ([`render_nginx_site`],
//! [`render_caddyfile`]), run on a free loopback port ([`Proxy`], killed on drop), and the
//! whole forward-auth set-up of SPEC §10.2 in one value ([`ForwardStack`]).
//!
//! The substitutions, and nothing else: `example.org` → `gatehouse.test`; TLS → plain HTTP on
//! the test's port (nginx: `listen 443 ssl http2;` → `listen 127.0.0.1:PORT;`, the `[::]:443`
//! listen and `ssl_*` lines dropped; Caddy: `http://…:PORT` site addresses, and `admin off`,
//! `auto_https off`, `default_bind 127.0.0.1` added to the global options); Gatehouse's and the
//! app's addresses (127.0.0.1:8080, 127.0.0.1:3000) → the test's; `/var/log/nginx/` and
//! `/var/log/caddy/` → the proxy's temporary directory. Each must apply at least once, so an
//! edit of deploy/ that a test would silently stop covering fails instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::server::TestApp;
use super::upstream::Upstream;

/// The test's stand-in for example.org; every `*.gatehouse.test` name is 127.0.0.1.
pub const TEST_DOMAIN: &str = "gatehouse.test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    Nginx,
    Caddy,
}

impl ProxyKind {
    fn program(self) -> (&'static str, &'static str) {
        match self {
            ProxyKind::Nginx => ("nginx", "nginx-light"),
            ProxyKind::Caddy => ("caddy", "caddy"),
        }
    }
}

/// The repository's deploy/ file `name`.
fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `text` with every `from` replaced by `to`; panics when `from` is not there.
fn substitute(text: &str, from: &str, to: &str, file: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/{file} no longer contains {from:?}, which the tests substitute"
    );
    text.replace(from, to)
}

/// Where the proxies find Gatehouse and the app in a test.
pub struct Backends<'a> {
    pub port: u16,
    pub gatehouse: &'a str,
    pub app: &'a str,
    pub log_dir: &'a Path,
}

/// deploy/nginx-forward-auth.conf for a test: plain HTTP on 127.0.0.1:PORT.
pub fn render_nginx_site(b: &Backends) -> String {
    let file = "nginx-forward-auth.conf";
    let mut text = deploy_file(file);
    text = substitute(&text, "example.org", TEST_DOMAIN, file);
    text = substitute(&text, "127.0.0.1:8080", b.gatehouse, file);
    text = substitute(&text, "127.0.0.1:3000", b.app, file);
    text = substitute(
        &text,
        "/var/log/nginx/",
        &format!("{}/", b.log_dir.display()),
        file,
    );
    text = substitute(
        &text,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{};", b.port),
        file,
    );
    let before = text.lines().count();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("ssl_") && !l.starts_with("listen [::]:443 ssl")
        })
        .collect();
    assert!(kept.len() < before, "deploy/{file} has no ssl_ lines left");
    kept.join("\n") + "\n"
}

/// deploy/Caddyfile for a test: plain HTTP on 127.0.0.1:PORT, no admin endpoint.
pub fn render_caddyfile(b: &Backends) -> String {
    let file = "Caddyfile";
    let mut text = deploy_file(file);
    text = substitute(&text, "example.org", TEST_DOMAIN, file);
    text = substitute(&text, "127.0.0.1:8080", b.gatehouse, file);
    text = substitute(&text, "127.0.0.1:3000", b.app, file);
    text = substitute(
        &text,
        "/var/log/caddy/",
        &format!("{}/", b.log_dir.display()),
        file,
    );
    for host in ["auth", "app"] {
        text = substitute(
            &text,
            &format!("\n{host}.{TEST_DOMAIN} {{\n"),
            &format!("\nhttp://{host}.{TEST_DOMAIN}:{} {{\n", b.port),
            file,
        );
    }
    substitute(
        &text,
        "\n{\n",
        "\n{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n",
        file,
    )
}

/// The nginx main configuration around the site: everything nginx writes stays in `dir`.
fn nginx_main_conf(dir: &Path) -> String {
    let d = dir.display();
    // As root, nginx would run its workers as `nobody`, who cannot write the temporary dir.
    // SAFETY: geteuid has no preconditions.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;\n"
    } else {
        ""
    };
    format!(
        "daemon off;\n{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20   access_log {d}/access.log;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {d}/site.conf;\n\
         }}\n"
    )
}

/// The program `name` on PATH or in the sbin directories; a clear failure when missing.
fn program(kind: ProxyKind) -> PathBuf {
    let (name, package) = kind.program();
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing: install Debian's {package} (scripts/test.sh does); \
                 the proxy tests fail rather than skip"
            )
        })
}

/// A running nginx or Caddy with deploy/'s configuration; killed on drop.
pub struct Proxy {
    pub kind: ProxyKind,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The rendered configuration, for failure messages.
    pub config: String,
    child: Option<Child>,
}

impl Proxy {
    /// Starts `kind` on `port` in front of Gatehouse at `gatehouse` and the app at `app`
    /// (`127.0.0.1:PORT` each) and waits until it accepts connections.
    pub fn start(kind: ProxyKind, port: u16, gatehouse: &str, app: &str) -> Proxy {
        let exe = program(kind);
        let dir = tempfile::tempdir().expect("proxy temp dir");
        let d = dir.path();
        let backends = Backends {
            port,
            gatehouse,
            app,
            log_dir: d,
        };
        let mut cmd = Command::new(&exe);
        let config = match kind {
            ProxyKind::Nginx => {
                let site = render_nginx_site(&backends);
                std::fs::write(d.join("site.conf"), &site).unwrap();
                std::fs::write(d.join("nginx.conf"), nginx_main_conf(d)).unwrap();
                cmd.arg("-p")
                    .arg(d)
                    .arg("-c")
                    .arg(d.join("nginx.conf"))
                    .arg("-e")
                    .arg(d.join("error.log"));
                site
            }
            ProxyKind::Caddy => {
                let caddyfile = render_caddyfile(&backends);
                std::fs::write(d.join("Caddyfile"), &caddyfile).unwrap();
                // Caddy keeps state (autosave, certificates) under HOME / XDG dirs.
                cmd.env_clear()
                    .env("HOME", d)
                    .env("XDG_DATA_HOME", d.join("data"))
                    .env("XDG_CONFIG_HOME", d.join("config"))
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(d.join("Caddyfile"));
                caddyfile
            }
        };
        let out = std::fs::File::create(d.join("stderr.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group: nginx's workers go with its master on drop.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut proxy = Proxy {
            kind,
            port,
            dir,
            config,
            child: Some(child),
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "{:?} exited at start ({status}):\n{}\nconfiguration:\n{}",
                    self.kind,
                    self.logs(),
                    self.config
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen on {} within 20 s:\n{}",
                self.kind,
                self.port,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy's own output and error log.
    pub fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything the proxy wrote to its access logs (every `*access.log` in its directory).
    pub fn access_logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if entry.file_name().to_string_lossy().ends_with("access.log") {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }

    /// Waits (up to 5 s) for the access logs to contain `needle`.
    pub fn access_logs_contain(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.access_logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `http://HOST.gatehouse.test:PORT` plus `path`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.{TEST_DOMAIN}:{}{path}", self.port)
    }

    /// A client that reaches `auth.` and `app.gatehouse.test` through this proxy, follows no
    /// redirect, keeps no cookies (a test sends them by hand) and gives up after 10 s (an
    /// answer that hangs is a failure, not a stuck suite).
    pub fn client(&self) -> reqwest::Client {
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        reqwest::Client::builder()
            .resolve(&format!("auth.{TEST_DOMAIN}"), loopback)
            .resolve(&format!("app.{TEST_DOMAIN}"), loopback)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill(2) on the process group led by a child we spawned and still own.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Gatehouse, an upstream app and a proxy in front of both, as SPEC §10.2 sets them up:
/// Gatehouse at `http://auth.gatehouse.test:PORT` (its public URL, through the proxy), the app
/// at `http://app.gatehouse.test:PORT`, the session cookie on `Domain=gatehouse.test`.
pub struct ForwardStack {
    // Dropped in this order: the proxy first, then what it fronts.
    pub proxy: Proxy,
    pub app: TestApp,
    pub upstream: Upstream,
}

impl ForwardStack {
    pub fn start(kind: ProxyKind) -> ForwardStack {
        let upstream = Upstream::start();
        let port = free_port();
        let public_url = format!("http://auth.{TEST_DOMAIN}:{port}");
        let app = TestApp::spawn(&[
            "--public-url",
            &public_url,
            "--trusted-proxies",
            "127.0.0.1",
            "--forward-domains",
            TEST_DOMAIN,
            "--cookie-domain",
            TEST_DOMAIN,
        ]);
        let gatehouse = format!("127.0.0.1:{}", app.port);
        let proxy = Proxy::start(kind, port, &gatehouse, &upstream.address());
        ForwardStack {
            proxy,
            app,
            upstream,
        }
    }

    /// A URL of the protected app, through the proxy.
    pub fn app_url(&self, path: &str) -> String {
        self.proxy.url("app", path)
    }

    /// A URL of Gatehouse, through the proxy.
    pub fn auth_url(&self, path: &str) -> String {
        self.proxy.url("auth", path)
    }
}
