//! Forward authentication behind the real proxies (SPEC §10.2): deploy/'s nginx site and
//! Caddyfile, run by nginx and Caddy on a free loopback port in front of Gatehouse
//! (`auth.gatehouse.test`) and an upstream app that echoes what it got (`app.gatehouse.test`).
//! One journey, run once per proxy.

use serde_json::{Value, json};

use crate::common::*;

const USER: &str = "fwd_user";
const PASSWORD: &str = "forward-auth-password";
/// What a client pretends to be in its own identity header.
const SPOOFED: &str = "admin";

/// The app's echo of a request that reached it; fails the test on any other answer.
async fn app_echo(r: reqwest::Response) -> Received {
    let status = r.status();
    let location = location(&r);
    let text = r.text().await.unwrap();
    assert_eq!(
        status, 200,
        "the app should answer (Location {location:?}): {text}"
    );
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the answer is not the app's echo ({e}): {text}"));
    Received::from_json(&v)
}

/// `rd` of a sign-in URL, which must be Gatehouse's public `/sign-in` with a `sig`.
fn return_address(stack: &ForwardStack, sign_in_url: &str) -> String {
    let url = reqwest::Url::parse(sign_in_url)
        .unwrap_or_else(|e| panic!("not a URL ({e}): {sign_in_url:?}"));
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        stack.auth_url("/sign-in"),
        "the sign-in URL should be Gatehouse's public /sign-in: {sign_in_url}"
    );
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert!(
        get("sig").is_some_and(|s| !s.is_empty()),
        "no sig: {sign_in_url}"
    );
    get("rd").unwrap_or_else(|| panic!("no rd: {sign_in_url}"))
}

/// Anonymous → sign in through the proxy (the no-JS form, with the `rd` Gatehouse signed) →
/// the app gets the user; spoofed identity headers and the session cookie never reach it; a
/// body reaches it; the group location; sign-out ends access; token paths stay out of logs.
async fn forward_auth_behind(kind: ProxyKind) {
    let stack = ForwardStack::start(kind);
    let c = stack.proxy.client();
    let page = stack.app_url("/reports?year=2025&q=a%20b");

    // Anonymous, with a spoofed identity: sent to Gatehouse's sign-in, `rd` = the app URL.
    let r = c
        .get(&page)
        .header("Remote-User", SPOOFED)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{kind:?}: anonymous app request");
    let sign_in_url = location(&r);
    assert_eq!(return_address(&stack, &sign_in_url), page, "{kind:?}");

    // An account, made through the proxy's Gatehouse host.
    let r = c
        .post(stack.auth_url("/api/users"))
        .json(&json!({ "username": USER, "password": PASSWORD, "full_name": "Forward User" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{kind:?}: {}", r.text().await.unwrap());

    // The sign-in form Gatehouse sent us to carries rd/sig; signing in there returns to rd.
    let r = c.get(&sign_in_url).send().await.unwrap();
    let device = cookie_pairs(&r);
    let html = r.text().await.unwrap();
    let field = |name: &str| {
        hidden_value(&html, name).unwrap_or_else(|| panic!("{kind:?}: no {name} on:\n{html}"))
    };
    let form = [
        ("username", USER.to_owned()),
        ("password", PASSWORD.to_owned()),
        ("csrf_token", field("csrf_token")),
        ("rd", field("rd")),
        ("sig", field("sig")),
    ];
    let r = c
        .post(stack.auth_url("/sign-in"))
        .header("Cookie", device.join("; "))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let back_to = location(&r);
    let session = session_cookie(&r);
    assert_eq!(
        (status.as_u16(), back_to.as_str()),
        (303, page.as_str()),
        "{kind:?}: sign-in with rd: {}",
        r.text().await.unwrap()
    );
    let session = session.expect("a session cookie");
    let cookie = format!("theme=dark; session={session}; lang=en");

    // Signed in, the same sign-in URL goes straight back to the app (no form, no loop).
    let r = c
        .get(&sign_in_url)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, page.clone()),
        "{kind:?}: signed-in visit of the sign-in URL"
    );

    // The app gets the user, and neither the spoofed header nor the session cookie.
    let got = app_echo(
        c.get(&page)
            .header("Cookie", &cookie)
            .header("Remote-User", SPOOFED)
            .header("remote-groups", "admins")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.header("remote-user"), Some(USER), "{kind:?}: {got:?}");
    let id = got.header("remote-user-id").unwrap_or_default();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "{kind:?}: Remote-User-Id {id:?}"
    );
    assert_eq!(got.header("remote-name"), Some("Forward User"), "{kind:?}");
    assert_eq!(
        got.header("remote-groups").unwrap_or_default(),
        "",
        "{kind:?}"
    );
    assert_eq!(
        got.header("remote-email").unwrap_or_default(),
        "",
        "{kind:?}"
    );
    assert_eq!(got.target, "/reports?year=2025&q=a%20b", "{kind:?}");
    assert_eq!(
        got.header("cookie"),
        Some("theme=dark; lang=en"),
        "{kind:?}: the app's cookies stay, the session cookie goes"
    );

    // A POST with a body is answered (the auth subrequest does not wait for the body) and
    // the body reaches the app whole.
    let body = "comment=".to_owned() + &"x".repeat(3000);
    let got = app_echo(
        c.post(stack.app_url("/comments"))
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: POST through the proxy: {e}")),
    )
    .await;
    assert_eq!((got.method.as_str(), got.body.len()), ("POST", body.len()));
    assert_eq!(got.body, body, "{kind:?}");
    assert_eq!(got.header("remote-user"), Some(USER), "{kind:?}");

    // An open location asks nobody, and still passes no client identity header.
    let got = app_echo(
        c.get(stack.app_url("/public/style.css"))
            .header("Cookie", &cookie)
            .header("Remote-User", SPOOFED)
            .header("Remote-Email", "spoof@example.org")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.header("remote-user"), None, "{kind:?}: {got:?}");
    assert_eq!(got.header("remote-email"), None, "{kind:?}: {got:?}");

    // The group location: 403 (not a redirect) until the user is in `admins`.
    let admin = stack.app_url("/admin/users");
    let r = c
        .get(&admin)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{kind:?}: /admin/ without the group");
    stack
        .app
        .admin_ok(&["user", "group", "add", USER, "admins"], "");
    let got = app_echo(
        c.get(&admin)
            .header("Cookie", &cookie)
            .header("Remote-Groups", "root")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.header("remote-groups"), Some("admins"), "{kind:?}");
    assert_eq!(got.header("remote-user"), Some(USER), "{kind:?}");

    // Sign-out on Gatehouse ends access to the app at once, with the same cookie.
    let r = c
        .delete(stack.auth_url("/api/session"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{kind:?}: sign-out");
    let r = c.get(&page).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 302, "{kind:?}: the app after sign-out");
    assert_eq!(return_address(&stack, &location(&r)), page, "{kind:?}");

    // Nothing the client claimed to be, and no session cookie, ever reached the app.
    let received = stack.upstream.received();
    assert_eq!(received.len(), 4, "{kind:?}: the app saw {received:#?}");
    for got in &received {
        let user = got.header("remote-user");
        assert!(user.is_none() || user == Some(USER), "{kind:?}: {got:?}");
        let email = got.header("remote-email").unwrap_or_default();
        assert_eq!(
            email, "",
            "{kind:?}: a client's Remote-Email reached the app: {got:?}"
        );
        let groups = got.header("remote-groups").unwrap_or_default();
        assert!(!groups.contains("root"), "{kind:?}: {got:?}");
        for (name, value) in &got.headers {
            assert!(
                !value.contains(&session) && !value.contains("{http."),
                "{kind:?}: {name}: {value} reached the app"
            );
        }
    }

    // Token paths of Gatehouse's host leave no access-log line; other paths do.
    let token = "tok3n-in-a-path-9f8e7d";
    for path in [
        format!("/password-reset/{token}"),
        format!("/verify-email/{token}"),
    ] {
        c.get(stack.auth_url(&path)).send().await.unwrap();
    }
    let marker = "/healthz?after-the-tokens";
    c.get(stack.auth_url(marker)).send().await.unwrap();
    assert!(
        stack.proxy.access_logs_contain(marker),
        "{kind:?}: no access-log line for {marker}:\n{}",
        stack.proxy.access_logs()
    );
    let logs = stack.proxy.access_logs();
    assert!(
        !logs.contains(token),
        "{kind:?}: a token was logged:\n{logs}"
    );
}

/// `name=value` of every cookie a response sets (to send them back by hand).
fn cookie_pairs(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn forward_auth_behind_nginx() {
    forward_auth_behind(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn forward_auth_behind_caddy() {
    forward_auth_behind(ProxyKind::Caddy).await;
}

/// The question to Gatehouse never carries the request body, nor a `Content-Length` that
/// would make it wait for one: Gatehouse's address is given to the proxy as the echoing app,
/// which records the auth request as it arrives (and answers 200, so the POST goes on to
/// the app with its body).
async fn auth_request_carries_no_body(kind: ProxyKind) {
    let upstream = Upstream::start();
    let proxy = Proxy::start(kind, free_port(), &upstream.address(), &upstream.address());
    let body = "comment=".to_owned() + &"y".repeat(5000);
    let r = proxy
        .client()
        .post(proxy.url("app", "/comments"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: POST through the proxy: {e}"));
    assert_eq!(r.status(), 200, "{kind:?}: {}", proxy.logs());
    let received = upstream.received();
    let (auth, app): (Vec<_>, Vec<_>) = received
        .iter()
        .partition(|r| r.target.starts_with("/auth/"));
    assert_eq!((auth.len(), app.len()), (1, 1), "{kind:?}: {received:#?}");
    let auth = auth[0];
    assert_eq!(auth.body, "", "{kind:?}: the auth request carried the body");
    assert_eq!(auth.header("content-length"), None, "{kind:?}: {auth:?}");
    assert_eq!(auth.header("transfer-encoding"), None, "{kind:?}: {auth:?}");
    assert_eq!(app[0].body, body, "{kind:?}: the app got the body");
}

#[tokio::test]
async fn nginx_asks_gatehouse_without_the_body() {
    auth_request_carries_no_body(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn caddy_asks_gatehouse_without_the_body() {
    auth_request_carries_no_body(ProxyKind::Caddy).await;
}
