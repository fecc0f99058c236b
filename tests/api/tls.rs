//! HTTPS served directly (`--tls-cert` / `--tls-key`) and behind a proxy (`--secure-cookies`):
//! `__Host-` cookies, `Secure`, HSTS; and a bad certificate or key as a clean start-up error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const HSTS: &str = "max-age=63072000";

/// A fresh self-signed certificate for `localhost`, written as cert.pem / key.pem into `dir`.
fn write_certificate(dir: &Path) {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), pair.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
}

/// A server on HTTPS, addressed as https://localhost:PORT, and a client that trusts only its
/// certificate, keeps cookies and does not follow redirects.
fn tls_app(extra: &[&str]) -> (TestApp, reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let mut args = vec![
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut app = TestApp::spawn_in(dir, &args);
    assert!(app.address.starts_with("https://"), "{}", app.address);
    // The certificate names localhost; pin it to the IPv4 address the server listens on.
    app.address = format!("https://localhost:{}", app.port);
    let client = tls_client(&app);
    (app, client)
}

/// A client with its own cookie jar that trusts only the certificate `app` serves, reaches
/// `localhost` at the server's address, and does not follow redirects.
fn tls_client(app: &TestApp) -> reqwest::Client {
    let pem = std::fs::read(app.dir.path().join("cert.pem")).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .https_only(true)
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], app.port)))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` header that sets `name`, if any.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The attributes after the cookie's value, lower-cased, without surrounding spaces.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// `__Host-` cookies must be `Secure`, `Path=/` and carry no `Domain`, or browsers drop them.
fn assert_host_cookie(set_cookie: &str) {
    let attrs = attributes(set_cookie);
    assert!(attrs.iter().any(|a| a == "secure"), "{set_cookie}");
    assert!(attrs.iter().any(|a| a == "httponly"), "{set_cookie}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{set_cookie}");
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "{set_cookie}"
    );
}

fn hsts(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn pages_load_over_https_with_hsts() {
    let (app, c) = tls_app(&[]);
    for (path, status) in [
        ("/sign-in", 200),
        ("/sign-up", 200),
        ("/healthz", 200),
        ("/nope", 404),
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(hsts(&r).as_deref(), Some(HSTS), "{path}");
        assert!(
            r.headers().contains_key("content-security-policy"),
            "{path}"
        );
    }
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(hsts(&r).as_deref(), Some(HSTS));
    // A browser without the cookie yet.
    let r = tls_client(&app)
        .get(app.url("/sign-in"))
        .send()
        .await
        .unwrap();
    let csrf = set_cookie(&r, "__Host-csrf").expect("__Host-csrf cookie");
    assert_host_cookie(&csrf);
    assert!(set_cookie(&r, "csrf").is_none());
}

#[tokio::test]
async fn sign_up_and_sign_in_over_https_use_a_host_prefixed_secure_session_cookie() {
    let (app, c) = tls_app(&[]);
    sign_up(&app, &c, "tess", "over-tls-password").await;
    let r = c.get(app.url("/welcome")).send().await.unwrap();
    assert_eq!(r.status(), 200, "signed in by sign-up");

    let fresh = tls_client(&app);
    let r = sign_in(&app, &fresh, "tess", "over-tls-password").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome");
    assert_eq!(hsts(&r).as_deref(), Some(HSTS));
    let session = set_cookie(&r, "__Host-session").expect("__Host-session cookie");
    assert_host_cookie(&session);
    assert!(set_cookie(&r, "session").is_none(), "no unprefixed cookie");
    let page = fresh.get(app.url("/welcome")).send().await.unwrap();
    assert_answer(page, 200, "tess").await;
    let r = fresh.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_page() {
    let (app, c) = tls_app(&[]);
    let port = app.port;
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /sign-in HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        reply
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(!text.starts_with("HTTP/"), "an HTTP answer: {text}");
    assert!(!text.contains("<html") && !text.contains("csrf"), "{text}");
    // A client insisting on http:// gets an error, not a page.
    let plain = reqwest::Client::new();
    let r = plain
        .get(format!("http://127.0.0.1:{port}/sign-in"))
        .send()
        .await;
    assert!(r.is_err(), "{:?}", r.map(|r| r.status()));
    // The server is unharmed.
    let r = c.get(app.url("/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn plain_http_without_secure_cookies_sends_no_hsts() {
    let app = TestApp::spawn(&[]);
    assert!(app.address.starts_with("http://"), "{}", app.address);
    let c = app.client();
    let r = c.get(app.url("/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(hsts(&r).is_none());
    let csrf = set_cookie(&r, "csrf").expect("csrf cookie");
    assert!(!attributes(&csrf).iter().any(|a| a == "secure"), "{csrf}");
    assert!(set_cookie(&r, "__Host-csrf").is_none());
}

#[tokio::test]
async fn secure_cookies_behind_a_proxy_give_hsts_and_host_prefixed_cookies() {
    let app = TestApp::spawn(&[
        "--secure-cookies",
        "--trusted-proxies",
        "127.0.0.1",
        "--public-url",
        "https://login.example.com",
    ]);
    // As nginx forwards it: the TLS ended at the proxy.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .get(app.url("/sign-in"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hsts(&r).as_deref(), Some(HSTS));
    assert_host_cookie(&set_cookie(&r, "__Host-csrf").expect("__Host-csrf cookie"));

    let r = c
        .post(app.url("/api/users"))
        .header("origin", "https://login.example.com")
        .json(&json!({"username": "prox", "password": "behind-nginx-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(app.url("/api/session"))
        .header("origin", "https://login.example.com")
        .json(&json!({"username": "prox", "password": "behind-nginx-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(hsts(&r).as_deref(), Some(HSTS));
    let session = set_cookie(&r, "__Host-session").expect("__Host-session cookie");
    assert_host_cookie(&session);
    assert!(set_cookie(&r, "session").is_none());
}

/// Runs the server with `args` until it exits (at most 30 s); returns its exit code and stderr.
fn run_to_exit(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .current_dir(dir)
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(dir.join("users.database"))
        .args(FAST_KDF)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gatehouse kept running with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_or_garbage_certificate_or_key_fails_start_up_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write_certificate(dir.path());
    let d = dir.path();
    std::fs::write(d.join("garbage.pem"), "this is not PEM\n").unwrap();
    std::fs::write(
        d.join("broken-key.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let other = tempfile::tempdir().unwrap();
    write_certificate(other.path());
    let path = |p: &Path, name: &str| p.join(name).to_str().unwrap().to_owned();
    let cases = [
        (
            path(d, "cert.pem"),
            path(d, "missing-key.pem"),
            "missing-key.pem",
        ),
        (path(d, "cert.pem"), path(d, "garbage.pem"), "garbage.pem"),
        (
            path(d, "cert.pem"),
            path(d, "broken-key.pem"),
            "broken-key.pem",
        ),
        (
            path(d, "missing-cert.pem"),
            path(d, "key.pem"),
            "missing-cert.pem",
        ),
        (path(d, "garbage.pem"), path(d, "key.pem"), "garbage.pem"),
        (
            path(d, "cert.pem"),
            path(other.path(), "key.pem"),
            "key.pem",
        ),
    ];
    for (cert, key, named) in cases {
        let (code, stderr) = run_to_exit(d, &["--tls-cert", &cert, "--tls-key", &key]);
        assert_eq!(code, Some(1), "{cert} / {key}: {stderr}");
        assert!(stderr.contains(named), "{cert} / {key}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_over_https_exits_0_promptly_despite_an_idle_connection() {
    let (mut app, c) = tls_app(&[]);
    let r = c.get(app.url("/sign-in")).send().await.unwrap();
    // HTTP/1.1 only: it takes part in the graceful shutdown (see docs/design.md).
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    r.text().await.unwrap(); // the connection now idles in the client's pool
    let asked = Instant::now();
    let status = tokio::task::block_in_place(|| app.terminate());
    assert!(status.success(), "{status:?}; log:\n{}", app.log());
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}
