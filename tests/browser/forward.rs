//! Forward authentication in a real browser (SPEC §10.2): deploy/'s nginx site in front of
//! Gatehouse (`auth.gatehouse.test`) and an app (`app.gatehouse.test`), both names mapped to
//! 127.0.0.1 by Chromium. Open the app anonymous → Gatehouse's sign-in → sign in with the
//! page's own digest → back on the app page, which names the user the app was told about;
//! sign out on Gatehouse → the app sends the browser to sign-in again.

use serde_json::json;

use crate::ONE_BROWSER;
use crate::common::{ForwardStack, ProxyKind, TEST_DOMAIN};
use crate::driver::{Browser, Js};
use crate::site::{press_submit, sign_out, text};

const USER: &str = "dana_fwd";
const PASSWORD: &str = "forward auth in a browser";

/// Waits until the browser shows a page whose URL starts with `prefix`; returns the URL.
async fn wait_at(b: &Browser, what: &str, prefix: &str) -> String {
    let v = b
        .wait_js(
            what,
            "return (location.href.startsWith(arguments[0]) && document.readyState === 'complete')
                ? location.href : null",
            json!([prefix]),
        )
        .await;
    v.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn app_behind_nginx_sends_the_browser_to_sign_in_and_back() {
    let _turn = ONE_BROWSER.lock().await;
    let stack = ForwardStack::start(ProxyKind::Nginx);
    let r = stack
        .proxy
        .client()
        .post(stack.auth_url("/api/users"))
        .json(&json!({ "username": USER, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "create {USER}: {}",
        r.text().await.unwrap()
    );

    let rules = format!("--host-resolver-rules=MAP *.{TEST_DOMAIN} 127.0.0.1");
    let b = Browser::launch_with(Js::On, &[&rules]).await;
    let app_page = stack.app_url("/dashboard?tab=team");
    let sign_in = stack.auth_url("/sign-in?");

    // Anonymous: the app's address lands on Gatehouse's sign-in page, carrying it in `rd`.
    b.goto(&app_page).await;
    let at = wait_at(&b, "Gatehouse's sign-in page", &sign_in).await;
    let rd = reqwest::Url::parse(&at)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    assert_eq!(rd.as_deref(), Some(app_page.as_str()), "at {at}");
    b.wait_js(
        "gatehouse.js",
        "return Boolean(window.Gatehouse)",
        json!([]),
    )
    .await;

    // Signing in (the page digests the password) returns to the app, which names the user.
    b.fill("#username", USER).await;
    b.fill("#password", PASSWORD).await;
    press_submit(&b, "/sign-in").await;
    // Chromium applies the sign-in page's CSP `form-action` to the redirect that follows the
    // form's POST: a 303 to another origin that it does not list is dropped silently.
    wait_at(
        &b,
        "the app page after signing in (when the server log shows the sign-in, the browser \
         refused the 303 to the app: the sign-in page's CSP form-action must allow rd's origin)",
        &app_page,
    )
    .await;
    assert_eq!(b.current_url().await, app_page);
    assert_eq!(text(&b, "#remote-user").await, USER, "the app's page");
    let seen = stack.upstream.received();
    let last = seen.last().expect("the app got the request");
    assert_eq!(last.header("remote-user"), Some(USER));
    assert!(
        last.header("cookie")
            .is_none_or(|c| !c.contains("session=")),
        "the session cookie reached the app: {last:?}"
    );

    // Sign out on Gatehouse: the app sends the browser to sign-in again.
    sign_out(&b, &stack.auth_url("")).await;
    let before = stack.upstream.received().len();
    b.goto(&app_page).await;
    wait_at(&b, "sign-in after signing out", &sign_in).await;
    assert_eq!(
        stack.upstream.received().len(),
        before,
        "the app answered a signed-out browser"
    );
    b.quit().await;
}
