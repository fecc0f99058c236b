//! Password reset by link (docs/behaviour.md §11.2), with links issued by `gatehouse user
//! reset-link`: the page never consumes its link, the form sets the password once, ends every
//! session and the fail-lock, and never signs in; used, superseded, expired and killed links
//! are 410; the JSON route answers the same way.

use crate::both_backends;
use crate::common::*;

both_backends!(
    a_link_sets_the_password_once_ends_sessions_and_never_signs_in,
    superseded_killed_expired_and_malformed_links_are_410,
    a_reset_clears_the_fail_lock_and_needs_a_csrf_token,
    the_json_route_answers_204_400_and_410,
);

const OLD: &str = "correct horse battery";
const NEW: &str = "a brand new passphrase";

/// `user reset-link NAME` (with extra flags); returns the link's path.
fn reset_link(app: &TestApp, name: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "user",
        "reset-link",
        name,
        "--public-url",
        "http://login.test",
    ];
    args.extend_from_slice(extra);
    let run = app.admin_ok(&args, "");
    let url = run.stdout.trim();
    assert!(run.stderr.contains("one-time reset link"), "{run:?}");
    url.strip_prefix("http://login.test")
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned()
}

/// Posts the no-JS reset form of `path` with `password` twice.
async fn post_reset(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    password: &str,
) -> reqwest::Response {
    submit_form(
        app,
        client,
        path,
        path,
        &[
            ("new_password", password),
            ("new_password_repeat", password),
        ],
    )
    .await
}

async fn a_link_sets_the_password_once_ends_sessions_and_never_signs_in(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let owner = app.client();
    sign_up(&app, &owner, "rosa", OLD).await;
    let path = reset_link(&app, "rosa", &[]);
    assert!(path.starts_with("/password-reset/") && path.len() == "/password-reset/".len() + 43);

    // GET shows the user and the form, twice: opening never consumes the link.
    let browser = app.client();
    for _ in 0..2 {
        let r = browser.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("value=\"rosa\"") && page.contains("readonly"),
            "{page}"
        );
        assert!(page.contains("data-username=\"rosa\""));
    }

    // Field rules first: a 400 that leaves the link good.
    let r = post_reset(&app, &browser, &path, "short").await;
    assert_eq!(r.status(), 400);
    let r = submit_form(
        &app,
        &browser,
        &path,
        &path,
        &[
            ("new_password", NEW),
            ("new_password_repeat", "something else"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);

    let r = post_reset(&app, &browser, &path, NEW).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(session_cookie(&r).is_none(), "a reset never signs in");
    let notice = page_text(&app, &browser, "/sign-in").await;
    assert!(notice.contains("Your password was changed"), "{notice}");

    // Every session of the user ended; the old password is gone, the new one works.
    assert_eq!(
        owner
            .get(app.url("/welcome"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        sign_in(&app, &app.client(), "rosa", OLD).await.status(),
        401
    );
    assert_eq!(
        sign_in(&app, &app.client(), "rosa", NEW).await.status(),
        303
    );

    // A second use, by GET or POST: 410 with a way to ask again.
    let r = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.text().await.unwrap().contains("href=\"/password-reset\""));
    let token = csrf_token(&app, &browser, "/sign-in").await;
    let again = "yet another passphrase";
    let r = post_form(
        &app,
        &browser,
        &path,
        &token,
        &[("new_password", again), ("new_password_repeat", again)],
    )
    .await;
    assert_eq!(r.status(), 410);
    let rows = app
        .audit_rows(|rows| rows.iter().any(|r| r.is("password_reset", "ok", "rosa")))
        .await;
    assert!(rows.iter().any(|r| r.is("password_reset", "ok", "rosa")));
}

async fn superseded_killed_expired_and_malformed_links_are_410(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    sign_up(&app, &client, "sami", OLD).await;

    // A newer link supersedes the older one.
    let first = reset_link(&app, "sami", &[]);
    let second = reset_link(&app, "sami", &[]);
    assert_eq!(
        client.get(app.url(&first)).send().await.unwrap().status(),
        410
    );
    assert_eq!(
        client.get(app.url(&second)).send().await.unwrap().status(),
        200
    );

    // A password change by another route kills it.
    assert_eq!(change_password(&app, &client, OLD, NEW).await.status(), 303);
    assert_eq!(
        client.get(app.url(&second)).send().await.unwrap().status(),
        410
    );

    // --reset-ttl: expired after its time.
    let short = reset_link(&app, "sami", &["--reset-ttl", "1s"]);
    assert_eq!(
        client.get(app.url(&short)).send().await.unwrap().status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(
        client.get(app.url(&short)).send().await.unwrap().status(),
        410
    );

    // Anything that is not a token: the same 410, never a 500.
    for bad in [
        "/password-reset/x",
        "/password-reset/%00",
        "/password-reset/..%2f..%2fetc%2fpasswd",
        &format!("/password-reset/{}", "A".repeat(44)),
        &format!("/password-reset/{}B", "A".repeat(42)),
    ] {
        let r = client.get(app.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), 410, "{bad}");
    }
    // Unknown users: the command says so and exits 1.
    let run = app.admin(&["user", "reset-link", "nobody"], "");
    assert_eq!(run.code, 1, "{run:?}");
}

async fn a_reset_clears_the_fail_lock_and_needs_a_csrf_token(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    sign_up(&app, &client, "tomas", OLD).await;
    fail_three_times(&app, &app.client(), "tomas").await;
    assert_eq!(
        sign_in(&app, &app.client(), "tomas", OLD).await.status(),
        429
    );

    let path = reset_link(&app, "tomas", &[]);
    // Without the form's token: 403, and the link still works.
    let bare = app.client();
    let r = bare
        .post(app.url(&path))
        .form(&[("new_password", NEW), ("new_password_repeat", NEW)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        post_reset(&app, &app.client(), &path, NEW).await.status(),
        303
    );
    // The owner, with the new password, is let in at once.
    assert_eq!(
        sign_in(&app, &app.client(), "tomas", NEW).await.status(),
        303
    );
}

async fn the_json_route_answers_204_400_and_410(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let client = app.client();
    sign_up(&app, &client, "ugo", OLD).await;
    let path = reset_link(&app, "ugo", &[]);
    let token = path.rsplit('/').next().unwrap();
    let api = |body: serde_json::Value| {
        let c = app.client();
        let url = app.url(&format!("/api/password-reset/{token}"));
        async move { c.post(url).json(&body).send().await.unwrap() }
    };
    let r = api(serde_json::json!({"password": "short"})).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["fields"]["password"].is_string(), "{body}");
    let r = api(serde_json::json!({"password": NEW, "password_digest": "x"})).await;
    assert_eq!(r.status(), 400);
    let r = api(serde_json::json!({"password": NEW})).await;
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("set-cookie").is_none());
    let r = api(serde_json::json!({"password": "another new passphrase"})).await;
    assert_eq!(r.status(), 410);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    assert_eq!(sign_in(&app, &app.client(), "ugo", NEW).await.status(), 303);
    // Not JSON: 415, as the rest of the API.
    let r = app
        .client()
        .post(app.url(&format!("/api/password-reset/{token}")))
        .body("password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn a_link_page_takes_its_own_null_origin_but_no_other_site() {
    // `Referrer-Policy: no-referrer` makes browsers send `Origin: null` with the page's POST.
    let app = TestApp::spawn(&[]);
    let client = app.client();
    sign_up(&app, &client, "vito", OLD).await;
    let path = reset_link(&app, "vito", &[]);
    let token = csrf_token(&app, &client, &path).await;
    let fields = [
        ("new_password", NEW),
        ("new_password_repeat", NEW),
        ("csrf_token", token.as_str()),
    ];
    let post = |origin: &'static str| {
        client
            .post(app.url(&path))
            .header("origin", origin)
            .form(&fields)
            .send()
    };
    assert_eq!(post("https://evil.example").await.unwrap().status(), 403);
    assert_eq!(post("null").await.unwrap().status(), 303);
    // Elsewhere `null` is still refused.
    let token = csrf_token(&app, &client, "/sign-in").await;
    let r = client
        .post(app.url("/sign-in"))
        .header("origin", "null")
        .form(&[
            ("username", "vito"),
            ("password", NEW),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
