//! Forward authentication (docs/behaviour.md §10.2) asked directly, as a proxy would:
//! `/auth/request` and `/auth/forward`, identity headers, `?group=`, the original URL from
//! trusted proxies only, the signed `rd` through sign-in, and the shared session cookie.

use std::io::{Read, Write};
use std::time::Duration;

use crate::both_backends;
use crate::common::*;

both_backends!(a_valid_session_gets_the_identity_headers_and_groups_decide,);

const PUBLIC: &str = "http://auth.gatehouse.test";

fn forward_flags() -> Vec<&'static str> {
    vec![
        "--public-url",
        PUBLIC,
        "--trusted-proxies",
        "127.0.0.1",
        "--forward-domains",
        "gatehouse.test",
        "--cookie-domain",
        "gatehouse.test",
    ]
}

/// Creates `name` through the JSON API with a full name and an email.
async fn create_user(app: &TestApp, name: &str) {
    let r = app
        .client()
        .post(app.url("/api/users"))
        .json(&serde_json::json!({
            "username": name,
            "password": "correct horse battery",
            "full_name": "Zoë Example",
            "email": format!("{name}@example.org"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Signs `name` in through the JSON API; returns the session cookie's value.
async fn session_of(app: &TestApp, name: &str) -> String {
    let r = app
        .client()
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"username": name, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    session_cookie(&r).expect("a session cookie")
}

/// Asks `path` as nginx would for `original` (an `X-Original-URL`), with `cookie` if any.
async fn ask(app: &TestApp, path: &str, cookie: Option<&str>, original: &str) -> reqwest::Response {
    let (client, _) = with_cookie("");
    let mut req = client.get(app.url(path)).header("x-original-url", original);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("session={c}"));
    }
    req.send().await.unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or("<non-ascii>"))
}

/// The `rd` and `sig` of a sign-in URL.
fn rd_of(location: &str) -> Option<(String, String)> {
    let query = location.split_once('?')?.1;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some((get("rd")?, get("sig")?))
}

#[tokio::test]
async fn anonymous_requests_are_sent_to_sign_in_with_a_signed_return_address() {
    let app = TestApp::spawn(&forward_flags());
    let original = "http://app.gatehouse.test/reports?q=1";

    let r = ask(&app, "/auth/request", None, original).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no cookie on /auth/*"
    );
    assert!(r.headers().get("remote-user").is_none());
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{PUBLIC}/sign-in?rd=")), "{loc}");
    let (rd, _) = rd_of(&loc).unwrap();
    assert_eq!(rd, original);

    let r = ask(&app, "/auth/forward", None, original).await;
    assert_eq!(r.status(), 302);
    assert_eq!(rd_of(&location(&r)).unwrap().0, original);

    // Caddy and Traefik say it with X-Forwarded-Proto/-Host/-Uri.
    let (client, _) = with_cookie("");
    let r = client
        .get(app.url("/auth/forward"))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "app.gatehouse.test")
        .header("x-forwarded-uri", "/a/b?c=d")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        rd_of(&location(&r)).unwrap().0,
        "http://app.gatehouse.test/a/b?c=d"
    );

    // A host outside --forward-domains: sign in, but no way back there.
    for bad in [
        "http://evil.example/",
        "http://badgatehouse.test/",
        "http://app.gatehouse.test\\@evil.example/",
        "javascript:alert(1)",
    ] {
        let r = ask(&app, "/auth/request", None, bad).await;
        assert_eq!(r.status(), 401);
        assert_eq!(location(&r), format!("{PUBLIC}/sign-in"), "{bad}");
    }
}

#[tokio::test]
async fn the_original_url_is_believed_only_from_a_trusted_proxy() {
    let app = TestApp::spawn(&forward_flags());
    create_user(&app, "tess").await;
    let cookie = session_of(&app, "tess").await;
    // 127.0.0.2 is a loopback address outside --trusted-proxies.
    let untrusted = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = untrusted
        .get(app.url("/auth/request"))
        .header("x-original-url", "http://app.gatehouse.test/x")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "app.gatehouse.test")
        .header("x-forwarded-uri", "/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        location(&r),
        format!("{PUBLIC}/sign-in"),
        "no rd from an untrusted peer"
    );
    // The decision itself still comes from the cookie.
    let r = untrusted
        .get(app.url("/auth/request"))
        .header("cookie", format!("session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-user"), Some("tess"));
}

async fn a_valid_session_gets_the_identity_headers_and_groups_decide(b: Backend) {
    let app = TestApp::spawn_on(b, &forward_flags());
    create_user(&app, "uma").await;
    let cookie = session_of(&app, "uma").await;
    let original = "http://app.gatehouse.test/";

    for path in ["/auth/request", "/auth/forward"] {
        let r = ask(&app, path, Some(&cookie), original).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
        assert!(r.headers().get("set-cookie").is_none());
        assert_eq!(header(&r, "remote-user"), Some("uma"));
        let id: i64 = header(&r, "remote-user-id").unwrap().parse().unwrap();
        assert!(id > 0);
        // UTF-8 as it is; the email is unverified, so empty; no groups yet: empty.
        assert_eq!(
            r.headers().get("remote-name").unwrap().as_bytes(),
            "Zoë Example".as_bytes()
        );
        assert_eq!(header(&r, "remote-email"), Some(""));
        assert_eq!(header(&r, "remote-groups"), Some(""));
        assert!(r.bytes().await.unwrap().is_empty());
    }

    // Groups: every named one is needed.
    let r = ask(&app, "/auth/request?group=admins", Some(&cookie), original).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("remote-user").is_none());
    app.admin_ok(&["user", "group", "add", "uma", "admins"], "");
    app.admin_ok(&["user", "group", "add", "uma", "devs"], "");
    let in_both = async || {
        let r = ask(&app, "/auth/request?group=admins", Some(&cookie), original).await;
        header(&r, "remote-groups") == Some("admins,devs")
    };
    assert!(honoured(&app, in_both).await, "added groups apply at once");
    let r = ask(&app, "/auth/request?group=admins", Some(&cookie), original).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-groups"), Some("admins,devs"));
    let r = ask(
        &app,
        "/auth/forward?group=admins&group=devs",
        Some(&cookie),
        original,
    )
    .await;
    assert_eq!(r.status(), 200);
    for denied in [
        "/auth/request?group=admins&group=ops",
        "/auth/request?group=Not%20A%20Group",
    ] {
        let r = ask(&app, denied, Some(&cookie), original).await;
        assert_eq!(r.status(), 403, "{denied}");
    }
    app.admin_ok(&["user", "group", "remove", "uma", "admins"], "");
    let refused = async || {
        let r = ask(&app, "/auth/request?group=admins", Some(&cookie), original).await;
        r.status() == 403
    };
    assert!(
        honoured(&app, refused).await,
        "a removed group applies at once"
    );

    // Anonymous beats the group question: sign in first.
    let r = ask(&app, "/auth/request?group=devs", None, original).await;
    assert_eq!(r.status(), 401);

    // Sign-out anywhere ends it for every proxy at once.
    let (client, _) = with_cookie("");
    let r = client
        .delete(app.url("/api/session"))
        .header("cookie", format!("session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        ask(&app, "/auth/request", Some(&cookie), original)
            .await
            .status(),
        401
    );
    assert_eq!(
        ask(&app, "/auth/forward", Some(&cookie), original)
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn any_method_is_answered_without_reading_a_body_or_checking_origin() {
    let app = TestApp::spawn(&forward_flags());
    create_user(&app, "vic").await;
    let cookie = session_of(&app, "vic").await;
    let (client, _) = with_cookie("");
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = client
            .request(method.parse().unwrap(), app.url("/auth/request"))
            .header("cookie", format!("session={cookie}"))
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(header(&r, "remote-user"), Some("vic"));
    }
    let r = client.head(app.url("/auth/request")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // An nginx subrequest: the original Content-Length, and no body ever follows.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /auth/request HTTP/1.1\r\nHost: auth.gatehouse.test\r\nContent-Length: 5000\r\n\
         Cookie: session={cookie}\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("an answer without the body");
    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("remote-user: vic"), "{head}");
}

#[tokio::test]
async fn sign_in_follows_a_verified_rd_and_a_signed_in_visit_goes_straight_back() {
    let app = TestApp::spawn(&forward_flags());
    create_user(&app, "wes").await;
    let original = "http://app.gatehouse.test/deep/link?x=1";
    let loc = location(&ask(&app, "/auth/request", None, original).await);
    let path = loc.strip_prefix(PUBLIC).unwrap().to_owned();
    let (_, signature) = rd_of(&loc).unwrap();

    // The page lets its form lead to the app's origin (browsers apply `form-action` to the
    // 303 after a post); other sign-in pages keep `form-action 'self'` alone.
    let client = app.client();
    let csp = |r: &reqwest::Response| header(r, "content-security-policy").unwrap().to_owned();
    let r = client.get(app.url(&path)).send().await.unwrap();
    assert!(
        csp(&r).contains("form-action 'self' http://app.gatehouse.test;"),
        "{}",
        csp(&r)
    );
    let r = client.get(app.url("/sign-in")).send().await.unwrap();
    assert!(csp(&r).contains("form-action 'self';"), "{}", csp(&r));

    // The form carries rd/sig through; a wrong password keeps them.
    let page = page_text(&app, &client, &path).await;
    assert_eq!(hidden_value(&page, "rd").as_deref(), Some(original));
    assert!(hidden_value(&page, "next").is_none());
    let r = submit_form(
        &app,
        &client,
        &path,
        "/sign-in",
        &[
            ("username", "wes"),
            ("password", "wrong password here"),
            ("rd", original),
            ("sig", &signature),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        hidden_value(&r.text().await.unwrap(), "rd").as_deref(),
        Some(original)
    );

    let r = submit_form(
        &app,
        &client,
        &path,
        "/sign-in",
        &[
            ("username", "wes"),
            ("password", "correct horse battery"),
            ("rd", original),
            ("sig", &signature),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), original);
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let session = set.iter().find(|c| c.starts_with("session=")).unwrap();
    assert!(session.contains("Domain=gatehouse.test"), "{session}");
    let device = set.iter().find(|c| c.starts_with("device=")).unwrap();
    assert!(
        !device.contains("Domain"),
        "only the session cookie is shared: {device}"
    );

    // Signed in, the proxy's sign-in URL goes straight back: no form, no loop. (The jar
    // keeps a `Domain=gatehouse.test` cookie away from 127.0.0.1: send it by hand.)
    let value = session.split(';').next().unwrap().to_owned();
    let (by_hand, _) = with_cookie("");
    let r = by_hand
        .get(app.url(&path))
        .header("cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), original);

    // A tampered rd, or rd with next's signature: the form, and /welcome after sign-in.
    let (rd, sig) = rd_of(&loc).unwrap();
    let tampered = format!(
        "/sign-in?rd={}&sig={sig}",
        form_urlencoded::byte_serialize(b"http://evil.example/").collect::<String>()
    );
    let anon = app.client();
    let page = page_text(&app, &anon, &tampered).await;
    assert!(hidden_value(&page, "rd").is_none());
    let r = submit_form(
        &app,
        &anon,
        &tampered,
        "/sign-in",
        &[
            ("username", "wes"),
            ("password", "correct horse battery"),
            ("rd", "http://evil.example/"),
            ("sig", &sig),
        ],
    )
    .await;
    assert_eq!(location(&r), "/welcome");
    assert!(rd.starts_with("http://app.gatehouse.test/"));
}

#[tokio::test]
async fn two_session_cookies_mean_anonymous_and_the_host_only_one_is_expired() {
    let app = TestApp::spawn(&forward_flags());
    create_user(&app, "xena").await;
    let cookie = session_of(&app, "xena").await;
    let planted = "6ba7b810-9dad-41d1-80b4-00c04fd430c8";
    let (client, _) = with_cookie("");
    for both in [
        format!("session={planted}; session={cookie}"),
        format!("session={cookie}; session={planted}"),
        format!("session={cookie}; session={cookie}"),
    ] {
        let r = client
            .get(app.url("/api/me"))
            .header("cookie", &both)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{both}");
        let set: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(
            set.iter().any(|c| c.starts_with("session=;")
                && c.contains("Max-Age=0")
                && !c.contains("Domain")),
            "{set:?}"
        );
        let r = client
            .get(app.url("/auth/request"))
            .header("cookie", &both)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
    }
    // One cookie alone still works.
    assert_eq!(
        ask(
            &app,
            "/auth/request",
            Some(&cookie),
            "http://app.gatehouse.test/"
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn secure_cookies_with_a_domain_are_named_secure_session() {
    let app = TestApp::spawn(&[
        "--public-url",
        "https://auth.gatehouse.test",
        "--secure-cookies",
        "--cookie-domain",
        "gatehouse.test",
    ]);
    create_user(&app, "yuri").await;
    let r = app
        .client()
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"username": "yuri", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("__Secure-session="))
        .unwrap_or_else(|| panic!("{set:?}"));
    assert!(session.contains("Domain=gatehouse.test") && session.contains("Secure"));
    assert!(
        set.iter()
            .any(|c| c.starts_with("__Host-device=") && !c.contains("Domain"))
    );
}

#[test]
fn impossible_cookie_settings_refuse_to_start_and_loops_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.database");
    let db = db.to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "--public-url",
                "https://login.other.test",
                "--cookie-domain",
                "gatehouse.test",
            ],
            "not under --cookie-domain",
        ),
        (
            vec!["--forward-domains", "gatehouse.test"],
            "needs --public-url",
        ),
        (
            vec!["--cookie-domain", "gatehouse.test"],
            "needs --public-url",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["--bind", "127.0.0.1:0", "--database", db])
            .args(&args)
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let app = TestApp::spawn(&[
        "--public-url",
        "http://auth.gatehouse.test",
        "--cookie-domain",
        "gatehouse.test",
        "--forward-domains",
        "gatehouse.test,apps.other.test",
    ]);
    assert!(
        app.log()
            .contains("apps.other.test is not under --cookie-domain")
    );
    assert!(!app.log().contains("entry gatehouse.test"));
}
