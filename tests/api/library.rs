//! Gatehouse as a library (docs/behaviour.md §10.3): `examples/members.rs`, an app built on the
//! public API alone, protects its own page (303 to sign in, then 200) and its own JSON route
//! (401, then 200), and holds its database like `gatehouse serve`.

use crate::common::*;

#[tokio::test]
async fn the_members_example_protects_its_page_and_its_json_route() {
    let app = TestApp::spawn_example("members", &[]);
    let client = app.client();

    // Anonymous: the page sends the browser to sign in, with a signed way back to the deep
    // link; the JSON route answers 401 in JSON.
    let r = client
        .get(app.url("/dashboard?tab=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(
        to.starts_with("/sign-in?next=%2Fdashboard%3Ftab%3D2&sig="),
        "{to}"
    );
    let r = client.get(app.url("/api/notes")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");

    // Gatehouse's own pages are mounted: sign up, then sign in through the signed link.
    sign_up(&app, &client, "nina", "correct horse battery").await;
    let r = submit_form(
        &app,
        &client,
        &to,
        "/sign-in",
        &[
            ("username", "nina"),
            ("password", "correct horse battery"),
            ("next", "/dashboard?tab=2"),
            ("sig", to.rsplit("sig=").next().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/dashboard?tab=2");

    app.admin_ok(&["user", "group", "add", "nina", "editors"], "");
    let r = client
        .get(app.url("/dashboard?tab=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The site's security headers apply to the app's pages too.
    assert!(r.headers().contains_key("content-security-policy"));
    let page = r.text().await.unwrap();
    assert!(page.contains("<b id=\"username\">nina</b>"), "{page}");
    assert!(page.contains("groups: editors"), "{page}");

    let r = client.get(app.url("/api/notes")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["username"], "nina");
    assert_eq!(body["groups"], serde_json::json!(["editors"]));
    assert!(body["user_id"].as_i64().unwrap() > 0);

    // Signing out on Gatehouse's page ends access to the app's routes.
    let token = csrf_token(&app, &client, "/sign-out").await;
    let r = post_form(&app, &client, "/sign-out", &token, &[]).await;
    assert_eq!(r.status(), 303);
    let r = client.get(app.url("/api/notes")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_embedding_app_holds_its_database_like_the_server() {
    let app = TestApp::spawn_example("members", &[]);
    // A `gatehouse serve` on the same file is refused while the app runs.
    let db = app.database();
    let run = serve_expecting_exit(&db, std::time::Duration::from_secs(20))
        .expect("a second server on the same database must exit");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("another Gatehouse server"), "{run:?}");
}
