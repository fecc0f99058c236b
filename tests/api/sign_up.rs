//! `POST /sign-up`: validation, uniqueness, both password paths.

use crate::both_backends;
use crate::common::*;

both_backends!(
    taken_username_in_another_case_and_taken_email_are_409,
    digest_and_plain_paths_store_identical_credentials,
    optional_fields_are_stored_as_null,
    sixteen_parallel_sign_ups_of_one_name_yield_one_success,
    parallel_sign_ups_of_one_email_in_any_case_yield_one_success,
);
use gatehouse::security::digest::PasswordDigest;

async fn post_sign_up(
    app: &TestApp,
    c: &reqwest::Client,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let token = csrf_token(app, c, "/sign-up").await;
    let r = post_form(app, c, "/sign-up", &token, fields).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn invalid_fields_give_400_with_every_message_and_kept_inputs() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let (status, html) = post_sign_up(
        &app,
        &c,
        &[
            ("username", "x!"),
            ("password", "short"),
            ("password_repeat", "short"),
            ("email", "not-an-email"),
            ("full_name", "Line\nBreak"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(html.matches("aria-invalid=\"true\"").count(), 4, "{html}");
    assert!(html.contains("Use at least 3 characters") || html.contains("Use only letters"));
    assert!(html.contains("Use at least 8 characters."));
    assert!(html.contains("Enter an email address"));
    assert!(html.contains("control characters"));
    assert!(html.contains("value=\"x!\""), "username kept");
    assert!(html.contains("value=\"not-an-email\""), "email kept");
    assert!(!html.contains("value=\"short\""), "never a password");
    // Focus goes to the first bad field.
    let first = html.find(" autofocus").expect("autofocus");
    assert!(html[..first].rfind("id=\"username\"").is_some());
    assert_eq!(html.matches(" autofocus").count(), 1);
    // Nothing was created.
    let n: i64 = app
        .db()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn mismatched_repeat_and_missing_password_are_400() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let (status, html) = post_sign_up(
        &app,
        &c,
        &[
            ("username", "mia"),
            ("password", "password-one"),
            ("password_repeat", "password-two"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("The passwords do not match."));
    let (status, html) =
        post_sign_up(&app, &c, &[("username", "mia"), ("password_digest", "")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("Enter a password."));
    let too_long = "x".repeat(1025);
    let (status, _) = post_sign_up(
        &app,
        &c,
        &[
            ("username", "mia"),
            ("password", &too_long),
            ("password_repeat", &too_long),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, html) =
        post_sign_up(&app, &c, &[("username", "mia"), ("password_digest", "abc")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("88 characters"));
}

async fn taken_username_in_another_case_and_taken_email_are_409(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    let (status, _) = post_sign_up(
        &app,
        &c,
        &[
            ("username", "alice"),
            ("password", "alice-password"),
            ("password_repeat", "alice-password"),
            ("email", "Alice@Example.com"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let c2 = app.client();
    let (status, html) = post_sign_up(
        &app,
        &c2,
        &[
            ("username", "  ALICE "),
            ("password", "other-password"),
            ("password_repeat", "other-password"),
            ("email", "x@y.org"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(html.contains("This username is taken"));
    assert!(html.contains("value=\"x@y.org\""), "other inputs kept");
    let (status, html) = post_sign_up(
        &app,
        &c2,
        &[
            ("username", "alice2"),
            ("password", "other-password"),
            ("password_repeat", "other-password"),
            ("email", "alice@EXAMPLE.COM"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(html.contains("email already exists"));
}

#[tokio::test]
async fn uniqueness_is_checked_only_when_every_field_is_valid() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "taken", "taken-password").await;
    let c2 = app.client();
    let (status, html) = post_sign_up(
        &app,
        &c2,
        &[
            ("username", "taken"),
            ("password", "short"),
            ("password_repeat", "short"),
        ],
    )
    .await;
    assert_eq!(status, 400, "field rules before 409");
    assert!(!html.contains("This username is taken"));
}

async fn digest_and_plain_paths_store_identical_credentials(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    // Signed up with a digest (as the page's JS sends it) ...
    let c = app.client();
    let d = PasswordDigest::compute("Zoe", "pa\u{0308}ssw\u{00f6}rd \u{fb01} \u{1f511}").to_wire();
    assert_eq!(
        d,
        "mh3cibthvry4Wbz5wehkI7sJnafVWUxonPL3DQi79CatdwVsRmYsb6d5RxNzWiLgRQ/DP8WcEKmng+LTQIgUeg=="
    );
    let (status, _) = post_sign_up(&app, &c, &[("username", "zoe"), ("password_digest", &d)]).await;
    assert_eq!(status, 303);
    // ... signs in with the plain password (no JS), NFKC-equivalent spelling included.
    let c2 = app.client();
    let r = sign_in(&app, &c2, "ZOE ", "p\u{00e4}ssw\u{00f6}rd fi \u{1f511}").await;
    assert_eq!(r.status(), 303);
    // And the other way round.
    let c3 = app.client();
    sign_up(&app, &c3, "bob_42", "hunter2hunter2").await;
    let r = submit_form(&app, &c3, "/sign-in", "/sign-in",
        &[
            ("username", "Bob_42 "),
            ("password_digest", "ABTpI6gYVn4M5bVqaNgMpvMVY3u9zxcqaRLFLhvuoxskGLSKzkmCHzi4VjJ5eLEaT4NMGVPc2AJaJH3TkblIIQ=="),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn a_non_empty_digest_wins_over_a_plain_password() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let d = PasswordDigest::compute("winner", "digest-password").to_wire();
    let (status, _) = post_sign_up(
        &app,
        &c,
        &[
            ("username", "winner"),
            ("password", "plain-password"),
            ("password_repeat", "mismatch!"),
            ("password_digest", &d),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        sign_in(&app, &app.client(), "winner", "digest-password")
            .await
            .status(),
        303
    );
    assert_eq!(
        sign_in(&app, &app.client(), "winner", "plain-password")
            .await
            .status(),
        401
    );
}

async fn optional_fields_are_stored_as_null(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    let (status, _) = post_sign_up(
        &app,
        &c,
        &[
            ("username", "nulls"),
            ("password", "nulls-password"),
            ("password_repeat", "nulls-password"),
            ("email", ""),
            ("full_name", ""),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let rows = app.query_rows("SELECT email, full_name FROM users WHERE username = 'nulls'");
    assert_eq!(rows, vec![vec![None, None]]);
}

#[tokio::test]
async fn sign_up_signs_in_and_sets_a_proper_cookie() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    let r = submit_form(
        &app,
        &c,
        "/sign-up",
        "/sign-up",
        &[
            ("username", "cookie_cat"),
            ("password", "cookie-password"),
            ("password_repeat", "cookie-password"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome");
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("session="))
        .expect("session cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(part), "{set}");
    }
    let value = set
        .trim_start_matches("session=")
        .split(';')
        .next()
        .unwrap();
    let id = uuid::Uuid::parse_str(value).expect("UUID cookie");
    assert_eq!(id.get_version_num(), 4);
}

async fn sixteen_parallel_sign_ups_of_one_name_yield_one_success(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let forms = (0..16).map(|i| {
        let pw = format!("parallel-password-{i}");
        vec![
            ("username", "racer".into()),
            ("password", pw.clone()),
            ("password_repeat", pw),
        ]
    });
    let statuses = post_in_parallel(&app, "/sign-up", forms).await;
    assert_eq!(count_of(&statuses, 303), 1, "{statuses:?}");
    assert_eq!(count_of(&statuses, 409), 15, "{statuses:?}");
    assert_eq!(app.query_i64("SELECT count(*) FROM users"), 1);
}

async fn parallel_sign_ups_of_one_email_in_any_case_yield_one_success(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let forms = (0..12).map(|i| {
        let pw = format!("parallel-password-{i}");
        // Twelve names, one address in as many spellings of its case.
        let email = if i % 2 == 0 {
            "Shared@Example.org"
        } else {
            "shared@EXAMPLE.ORG"
        };
        vec![
            ("username", format!("sharer_{i}")),
            ("email", email.into()),
            ("password", pw.clone()),
            ("password_repeat", pw),
        ]
    });
    let statuses = post_in_parallel(&app, "/sign-up", forms).await;
    assert_eq!(count_of(&statuses, 303), 1, "{statuses:?}");
    assert_eq!(count_of(&statuses, 409), 11, "{statuses:?}");
    assert_eq!(app.query_i64("SELECT count(*) FROM users"), 1);
}
