//! The members-only folder (README "Protecting your pages"): sign-in with the deep link kept,
//! index files and slash redirects, validators and headers, and no file outside the folder
//! under any spelling (sent raw, so no client normalises the path first).

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const SECRET: &str = "TOP-SECRET-OUTSIDE";

/// `root/site` (the folder) and, beside it, files that must never be served.
fn folder() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("site");
    for d in ["docs", "empty", ".git", "café"] {
        std::fs::create_dir_all(site.join(d)).unwrap();
    }
    let files: &[(&str, &str)] = &[
        ("index.html", "<h1>members home</h1>"),
        ("docs/index.html", "docs index"),
        ("docs/a b.txt", "spaced file"),
        ("style.css", "body{}"),
        ("café/日本.html", "unicode file"),
        (".htpasswd", SECRET),
        (".git/config", SECRET),
    ];
    for (name, body) in files {
        std::fs::write(site.join(name), body).unwrap();
    }
    std::fs::write(root.path().join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), site.join("out.txt")).unwrap();
    std::os::unix::fs::symlink(root.path(), site.join("up")).unwrap();
    std::os::unix::fs::symlink("docs/a b.txt", site.join("alias.txt")).unwrap();
    (root, site)
}

fn serve(site: &Path, extra: &[&str]) -> TestApp {
    let mut args = vec!["--protect-dir", site.to_str().unwrap()];
    args.extend_from_slice(extra);
    TestApp::spawn(&args)
}

/// A signed-up, signed-in client and its session cookie.
async fn member(app: &TestApp) -> (reqwest::Client, String) {
    let c = app.client();
    let r = sign_up_form(app, &c, "member", "member-password").await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r).expect("session cookie");
    (c, cookie)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Sends `GET target` byte for byte; returns the status and the body.
async fn raw_get(app: &TestApp, target: &[u8], cookie: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session={cookie}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn anonymous_visitors_sign_in_and_land_on_the_deep_link() {
    let (_root, site) = folder();
    let app = serve(&site, &[]);
    let _ = member(&app).await;
    let anon = app.client();
    let target = "/members/docs/a%20b.txt?x=1&y=%2F";
    let r = anon.get(app.url(target)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with("/sign-in?"), "{loc}");
    assert_eq!(query_param(&loc, "next").as_deref(), Some(target));
    let sig = query_param(&loc, "sig").unwrap();
    let r = anon.get(app.url("/members")).send().await.unwrap();
    assert_eq!(r.status(), 303, "anonymous gets sign-in before the slash");

    let token = csrf_token(&app, &anon, &loc).await;
    let r = post_form(
        &app,
        &anon,
        "/sign-in",
        &token,
        &[
            ("username", "member"),
            ("password", "member-password"),
            ("next", target),
            ("sig", &sig),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), target);
    let r = anon.get(app.url(target)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "spaced file");
}

#[tokio::test]
async fn indexes_slashes_types_and_missing_files() {
    let (_root, site) = folder();
    let app = serve(&site, &[]);
    let (c, _) = member(&app).await;
    let get = |p: &str| c.get(app.url(p)).send();
    for (from, to) in [
        ("/members", "/members/"),
        ("/members/docs", "/members/docs/"),
        ("/members/docs?q=1", "/members/docs/?q=1"),
    ] {
        let r = get(from).await.unwrap();
        assert_eq!(r.status(), 308, "{from}");
        assert_eq!(location(&r), to);
    }
    let r = get("/members/").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "<h1>members home</h1>");
    assert_eq!(
        get("/members/docs/").await.unwrap().text().await.unwrap(),
        "docs index"
    );
    let r = get("/members/style.css").await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    let r = get("/members/docs/a%20b.txt").await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let r = get("/members/caf%C3%A9/%E6%97%A5%E6%9C%AC.html")
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "unicode file");
    assert_eq!(
        get("/members/alias.txt")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "spaced file"
    );
    for missing in [
        "/members/empty/",
        "/members/nope.html",
        "/members/style.css/",
        "/members/café/",
    ] {
        let r = get(missing).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
        assert!(
            r.text().await.unwrap().contains("Page not found"),
            "{missing}"
        );
    }
    let r = c.post(app.url("/members/")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn nothing_outside_the_folder_leaves_under_any_spelling() {
    let (_root, site) = folder();
    let app = serve(&site, &[]);
    let (_c, cookie) = member(&app).await;
    let (status, body) = raw_get(&app, b"/members/docs/a%20b.txt", &cookie).await;
    assert_eq!(status, 200, "the raw client works: {body}");
    for target in [
        &b"/members/../secret.txt"[..],
        b"/members/%2e%2e/secret.txt",
        b"/members/%2E%2E/secret.txt",
        b"/members/%2E./secret.txt",
        b"/members/.%2e/secret.txt",
        b"/members/..%2fsecret.txt",
        b"/members/..%2Fsecret.txt",
        b"/members/docs/..%2f..%2fsecret.txt",
        b"/members/..%5csecret.txt",
        b"/members/..\\secret.txt",
        b"/members/%5c..%5csecret.txt",
        b"/members/%252e%252e/secret.txt",
        b"/members/%252e%252e%252fsecret.txt",
        b"/members/%c0%ae%c0%ae/secret.txt",
        b"/members/secret.txt%00.html",
        b"/members/.htpasswd",
        b"/members/%2ehtpasswd",
        b"/members/.git/config",
        b"/members/%2egit/config",
        b"/members/out.txt",
        b"/members/up/secret.txt",
        b"/members/up/",
        b"/members//secret.txt",
        b"/members/%",
        b"/members/%zz",
        b"/members/%FF",
        b"/members/docs/../../secret.txt",
        b"/members/./../secret.txt",
        b"/members%2f..%2fsecret.txt",
        b"/members/..;/secret.txt",
    ] {
        let (status, body) = raw_get(&app, target, &cookie).await;
        let shown = String::from_utf8_lossy(target);
        assert!(status == 404 || status == 400, "{shown}: {status}\n{body}");
        assert!(!body.contains(SECRET), "{shown} leaked");
    }
}

#[tokio::test]
async fn validators_head_and_headers() {
    let (_root, site) = folder();
    let app = serve(&site, &[]);
    let (c, _) = member(&app).await;
    let url = app.url("/members/style.css");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert!(h.contains_key("last-modified"));
    assert_eq!(h["cache-control"], "private, no-cache");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    let site_csp =
        c.get(app.url("/sign-in")).send().await.unwrap().headers()["content-security-policy"]
            .clone();
    assert_eq!(h["content-security-policy"], site_csp);

    let r = c
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(r.text().await.unwrap(), "");
    let r = c
        .get(&url)
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = c.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "6");
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(r.text().await.unwrap(), "");

    // A changed file gets a new ETag.
    std::fs::write(site.join("style.css"), "body{color:red}").unwrap();
    let r = c
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "body{color:red}");
}

#[tokio::test]
async fn protect_csp_and_prefix_apply_to_the_folder_only() {
    let (_root, site) = folder();
    let csp = "default-src 'self'; script-src 'self' 'unsafe-inline'";
    let app = serve(
        &site,
        &["--protect-at", "/files/private", "--protect-csp", csp],
    );
    let (c, _) = member(&app).await;
    let r = c.get(app.url("/files/private/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-security-policy"], csp);
    let r = c.get(app.url("/welcome")).send().await.unwrap();
    assert_ne!(r.headers()["content-security-policy"], csp);
    assert_eq!(
        c.get(app.url("/members/")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn a_revoked_session_is_sent_to_sign_in() {
    let (_root, site) = folder();
    let app = serve(&site, &[]);
    let (c, cookie) = member(&app).await;
    let (status, _) = raw_get(&app, b"/members/", &cookie).await;
    assert_eq!(status, 200);
    let r = submit_form(&app, &c, "/sign-out", "/sign-out", &[]).await;
    assert_eq!(r.status(), 303);
    let (status, head) = raw_get(&app, b"/members/docs/?a=b", &cookie).await;
    assert_eq!(status, 303);
    assert!(head.contains("next=%2Fmembers%2Fdocs%2F%3Fa%3Db"), "{head}");
}

#[tokio::test]
async fn a_disabled_user_is_sent_to_sign_in() {
    let (_root, site) = folder();
    let app = serve(&site, &[]);
    let (c, _) = member(&app).await;
    assert_eq!(
        c.get(app.url("/members/")).send().await.unwrap().status(),
        200
    );
    app.admin_ok(&["user", "disable", "member"], "");
    let r = c.get(app.url("/members/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/sign-in?next=%2Fmembers%2F&sig="));
}

#[tokio::test]
async fn without_a_folder_the_prefix_is_an_ordinary_404() {
    let app = TestApp::spawn(&[]);
    let (c, _) = member(&app).await;
    for p in ["/members", "/members/", "/members/x.html"] {
        assert_eq!(c.get(app.url(p)).send().await.unwrap().status(), 404, "{p}");
        let anon = app.client();
        assert_eq!(
            anon.get(app.url(p)).send().await.unwrap().status(),
            404,
            "{p}"
        );
    }
}

#[test]
fn an_overlapping_prefix_is_refused_at_start() {
    let (root, site) = folder();
    for prefix in [
        "/account",
        "/sign-in/x",
        "/static",
        "/",
        "/api/members",
        "/members/",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .env_clear()
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(root.path().join("users.database"))
            .arg("--protect-dir")
            .arg(&site)
            .args(["--protect-at", prefix])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{prefix}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--protect-at"), "{prefix}: {err}");
    }
    assert!(
        !root.path().join("users.database").exists(),
        "refused before the database"
    );
}
