//! Routes, statuses and headers of the HTML pages.

use crate::common::*;

#[tokio::test]
async fn health_check_answers_ok() {
    let app = TestApp::spawn(&[]);
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn root_redirects_by_state() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in");
    sign_up(&app, &c, "rooty", "root-password-1").await;
    let r = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome");
}

#[tokio::test]
async fn html_pages_carry_security_headers() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    for path in ["/sign-in", "/sign-up", "/sign-out", "/nope"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("<script>") && !body.contains("style="),
            "{path}: inline script/style"
        );
    }
}

#[tokio::test]
async fn forms_have_the_spec_field_names_and_autocomplete() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let up = page_text(&app, &c, "/sign-up").await;
    for name in [
        "username",
        "password",
        "password_repeat",
        "email",
        "full_name",
        "password_digest",
        "csrf_token",
    ] {
        assert!(
            up.contains(&format!("name=\"{name}\"")),
            "sign-up lacks {name}"
        );
    }
    assert!(
        up.contains("autocomplete=\"new-password\"") && up.contains("autocomplete=\"username\"")
    );
    let inn = page_text(&app, &c, "/sign-in").await;
    for name in ["username", "password", "password_digest", "csrf_token"] {
        assert!(
            inn.contains(&format!("name=\"{name}\"")),
            "sign-in lacks {name}"
        );
    }
    assert!(inn.contains("autocomplete=\"current-password\""));
    // Every input has a label tied to it.
    for id in ["username", "password"] {
        assert!(inn.contains(&format!("<label for=\"{id}\">")));
    }
}

#[tokio::test]
async fn static_files_are_versioned_and_cached() {
    let app = TestApp::spawn(&[]);
    let html = reqwest::get(app.url("/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for asset in ["gatehouse.js", "style.css"] {
        let start = html
            .find(&format!("/static/{asset}?v="))
            .expect("versioned URL");
        let end = html[start..].find('"').unwrap() + start;
        let url = &html[start..end];
        let r = reqwest::get(app.url(url)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(if asset.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        }));
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    assert_eq!(
        reqwest::get(app.url("/static/nope.js"))
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn unknown_paths_are_404_pages_and_wrong_methods_405_with_allow() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = c.get(app.url("/does-not-exist")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("Page not found"));

    for (method, path, allow) in [
        (reqwest::Method::POST, "/welcome", "GET, HEAD"),
        (reqwest::Method::DELETE, "/sign-in", "GET, HEAD, POST"),
        (reqwest::Method::PUT, "/sign-up", "GET, HEAD, POST"),
        (reqwest::Method::GET, "/account/password", "POST"),
        (reqwest::Method::GET, "/account/sessions/1/revoke", "POST"),
        (
            reqwest::Method::GET,
            "/account/sessions/revoke-others",
            "POST",
        ),
        (reqwest::Method::POST, "/healthz", "GET, HEAD"),
        (reqwest::Method::GET, "/api/users", "POST"),
        (reqwest::Method::PUT, "/api/session", "POST, DELETE"),
        (reqwest::Method::POST, "/api/me", "GET, HEAD"),
    ] {
        let r = c
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn welcome_greets_by_full_name_or_username() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let token = csrf_token(&app, &c, "/sign-up").await;
    let r = post_form(
        &app,
        &c,
        "/sign-up",
        &token,
        &[
            ("username", "Grace_H"),
            ("password", "hopper-compiler"),
            ("password_repeat", "hopper-compiler"),
            ("email", ""),
            ("full_name", "Grace <Hopper>"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome");
    let html = page_text(&app, &c, "/welcome").await;
    assert!(
        html.contains("Welcome, Grace &#60;Hopper&#62;!")
            || html.contains("Welcome, Grace &lt;Hopper&gt;!"),
        "{html}"
    );
    assert!(html.contains("grace_h"), "header shows who is signed in");

    let c2 = app.client();
    sign_up(&app, &c2, "plain_user", "plain-password").await;
    let html = page_text(&app, &c2, "/welcome").await;
    assert!(html.contains("Welcome, plain_user!"));
}

#[tokio::test]
async fn sign_in_and_sign_up_are_served_when_signed_in() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "already", "already-in-1").await;
    for path in ["/sign-in", "/sign-up", "/sign-out"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Signed in as <strong>already</strong>"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn get_sign_out_changes_nothing() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "stayer", "stayer-password").await;
    let r = c.get(app.url("/sign-out")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<button"));
    assert_eq!(
        c.get(app.url("/welcome")).send().await.unwrap().status(),
        200
    );
}
