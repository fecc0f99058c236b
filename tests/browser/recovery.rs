//! A password reset through its link in a real browser: the page shows the username read-only,
//! the page's JS digests the new password (no plain password leaves the page), the browser
//! lands on sign-in with the notice, and the new password signs in.

use serde_json::json;

use crate::ONE_BROWSER;
use crate::common::TestApp;
use crate::driver::{Browser, Js};
use crate::site::{assert_wire_digest, digest, form_posts, password_forms, submit, text};

#[tokio::test]
async fn a_reset_link_sets_a_digested_password_in_the_browser() {
    let _turn = ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://localhost:{}", app.port);
    let user = "rhea_reset";
    let new_pw = "a new päss phrase 7";
    app.admin_ok(&["user", "add", user], "an old long password\n");
    let run = app.admin_ok(&["user", "reset-link", user, "--public-url", &origin], "");
    let link = run.stdout.trim().to_owned();
    assert!(
        link.starts_with(&format!("{origin}/password-reset/")),
        "{link}"
    );

    let b = Browser::launch(Js::On).await;
    b.goto(&link).await;
    b.wait_js(
        "gatehouse.js",
        "return Boolean(window.Gatehouse)",
        json!([]),
    )
    .await;
    let shown = b
        .exec(
            "const u = document.querySelector('#username'); return [u.value, u.readOnly]",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!([user, true]));
    let action = link.strip_prefix(&origin).unwrap().to_owned();
    let at = submit(
        &b,
        &action,
        &[("new_password", new_pw), ("new_password_repeat", new_pw)],
    )
    .await;
    let body = b.exec("return document.body.innerText", json!([])).await;
    assert_eq!(at, "/sign-in", "{body}\n{}", app.log());
    assert!(
        text(&b, ".notice")
            .await
            .contains("Your password was changed")
    );

    // What Chrome sent: the digest of username ‖ new password, never the password itself.
    let posts = form_posts(&b, &origin, 1).await;
    let reset = posts
        .iter()
        .find(|p| p.path.starts_with("/password-reset/"))
        .expect("the reset form's POST");
    let sent = reset.value("new_password_digest").expect("a digest field");
    assert_wire_digest(sent, "new_password_digest");
    assert_eq!(sent, digest(user, new_pw));
    for p in &posts {
        for form in password_forms(new_pw) {
            assert!(
                !p.raw.contains(&form),
                "plain password in {}: {}",
                p.path,
                p.raw
            );
        }
    }

    // The new password signs in, in the same browser.
    let at = submit(&b, "/sign-in", &[("username", user), ("password", new_pw)]).await;
    assert_eq!(at, "/welcome");
    b.quit().await;
}
