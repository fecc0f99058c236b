//! Admin commands against a running server on the same database (issue 5): each takes effect
//! on the very next request, exits 0 / 1 / 2, and never takes a password from argv.

use crate::common::*;

async fn welcome_status(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(app.url("/welcome"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn user_add_uses_the_site_rules_and_the_user_signs_in_on_the_running_server() {
    let app = TestApp::spawn(&[]);
    let run = app.admin_ok(
        &[
            "user",
            "add",
            "  Carol ",
            "--email",
            "carol@example.org",
            "--full-name",
            "Carol C",
        ],
        "carol-password\n",
    );
    assert!(run.stderr.contains("created user carol"), "{run:?}");
    let c = app.client();
    let r = sign_in(&app, &c, "carol", "carol-password").await;
    assert_eq!(r.status(), 303);
    assert_eq!(welcome_status(&app, &c).await, 200);
    // The same digest → Argon2id path as the site: the JS digest signs in too.
    let stored: String = app
        .db()
        .query_row(
            "SELECT password_hash FROM users WHERE username = 'carol'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored.starts_with("$argon2id$"));

    // The site's field rules apply, with a clear message and exit code 1.
    for (args, stdin, message) in [
        (vec!["user", "add", "dave"], "short\n", "at least 8"),
        (
            vec!["user", "add", "no spaces"],
            "long-enough-pw\n",
            "not a valid username",
        ),
        (vec!["user", "add", "carol"], "long-enough-pw\n", "taken"),
        (
            vec!["user", "add", "erin", "--email", "CAROL@example.org"],
            "long-enough-pw\n",
            "email is taken",
        ),
        (
            vec!["user", "add", "erin", "--email", "not-an-email"],
            "long-enough-pw\n",
            "email",
        ),
        (vec!["user", "add", "erin"], "", "no password"),
    ] {
        let run = app.admin(&args, stdin);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.to_lowercase().contains(message),
            "{args:?}: {run:?}"
        );
    }
    let users: i64 = app
        .db()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1, "refused adds create nothing");

    // A password on the command line is a usage error: it would be visible in `ps`.
    let run = app.admin(&["user", "add", "frank", "frank-password"], "");
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(app.admin(&["user"], "").code, 2);
    assert_eq!(app.admin(&["session", "revoke", "seven"], "").code, 2);
    assert_eq!(app.admin(&["no-such-command"], "").code, 2);
}

#[tokio::test]
async fn disable_ends_sessions_at_once_and_enable_lets_the_user_back() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "grace", "grace-password").await;
    assert_eq!(welcome_status(&app, &c).await, 200);

    app.admin_ok(&["user", "disable", "Grace"], "");
    assert_eq!(
        welcome_status(&app, &c).await,
        303,
        "signed out on the next request"
    );
    let r = sign_in(&app, &app.client(), "grace", "grace-password").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The username or password is incorrect.")
    );
    let list = app.admin_ok(&["user", "list"], "");
    assert!(list.stdout.contains("grace\tdisabled"), "{list:?}");

    app.admin_ok(&["user", "enable", "grace"], "");
    let c2 = app.client();
    assert_eq!(
        sign_in(&app, &c2, "grace", "grace-password").await.status(),
        303
    );
    assert_eq!(welcome_status(&app, &c2).await, 200);

    let run = app.admin(&["user", "disable", "nobody"], "");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no user nobody"));
}

#[tokio::test]
async fn unlock_lets_a_locked_user_sign_in_at_once() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "heidi", "heidi-password").await;
    let c = app.client();
    fail_three_times(&app, &c, "heidi").await;
    assert_eq!(
        sign_in(&app, &c, "heidi", "heidi-password").await.status(),
        429
    );

    app.admin_ok(&["user", "unlock", "heidi"], "");
    assert_eq!(
        sign_in(&app, &c, "heidi", "heidi-password").await.status(),
        303
    );
    assert_eq!(welcome_status(&app, &c).await, 200);

    // The unlock forgives the failures before it, not the ones after.
    let other = app.client();
    fail_three_times(&app, &other, "heidi").await;
    assert_eq!(
        sign_in(&app, &other, "heidi", "heidi-password")
            .await
            .status(),
        429
    );
    assert_eq!(app.admin(&["user", "unlock", "nobody"], "").code, 1);
}

#[tokio::test]
async fn session_list_shows_public_ids_and_revoke_ends_that_session_only() {
    let app = TestApp::spawn(&[]);
    let (a, b) = (app.client(), app.client());
    sign_up(&app, &a, "ivan", "ivan-password").await;
    let r = sign_in(&app, &b, "ivan", "ivan-password").await;
    let b_cookie = session_cookie(&r).expect("session cookie");
    sign_up(&app, &app.client(), "judy", "judy-password").await;

    let list = app.admin_ok(&["session", "list", "--user", "ivan"], "");
    let ids: Vec<i64> = list
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list:?}");
    assert!(list.stdout.lines().skip(1).all(|l| l.contains("\tivan\t")));
    assert!(!list.stdout.contains(&b_cookie), "never the cookie");
    let all = app.admin_ok(&["session", "list"], "");
    assert_eq!(
        all.stdout.lines().count(),
        4,
        "header + 3 sessions: {all:?}"
    );

    // The id /account shows for browser b is the id the command revokes.
    let account = page_text(&app, &b, "/account").await;
    let newest = *ids.iter().max().unwrap();
    assert!(account.contains(&format!("<td>{newest}</td>")), "{account}");
    app.admin_ok(&["session", "revoke", &newest.to_string()], "");
    assert_eq!(welcome_status(&app, &b).await, 303, "b is signed out");
    assert_eq!(welcome_status(&app, &a).await, 200, "a is not");

    let run = app.admin(&["session", "revoke", &newest.to_string()], "");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no session"));
}

#[tokio::test]
async fn purge_expired_deletes_only_dead_sessions() {
    let app = TestApp::spawn(&["--session-idle", "1h"]);
    let c = app.client();
    sign_up(&app, &c, "kim", "kim-password").await;
    sign_up(&app, &app.client(), "lee", "lee-password").await;
    app.db()
        .execute(
            "UPDATE sessions SET expires_at = 0 WHERE user_id = (SELECT id FROM users WHERE username = 'lee')",
            [],
        )
        .unwrap();
    let run = app.admin_ok(&["session", "purge-expired"], "");
    assert!(run.stderr.contains("deleted 1 expired"), "{run:?}");
    let left: i64 = app
        .db()
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 1);
    assert_eq!(welcome_status(&app, &c).await, 200);
}

#[tokio::test]
async fn set_password_replaces_it_and_ends_sessions_and_delete_removes_the_user() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "mallory", "old-password").await;
    app.admin_ok(&["user", "set-password", "mallory"], "new-password\r\n");
    assert_eq!(welcome_status(&app, &c).await, 303, "sessions ended");
    assert_eq!(
        sign_in(&app, &app.client(), "mallory", "old-password")
            .await
            .status(),
        401
    );
    let c2 = app.client();
    assert_eq!(
        sign_in(&app, &c2, "mallory", "new-password").await.status(),
        303
    );
    let run = app.admin(&["user", "set-password", "mallory"], "short\n");
    assert_eq!(run.code, 1);
    assert_eq!(
        app.admin(&["user", "set-password", "nobody"], "x-password\n")
            .code,
        1
    );

    let show = app.admin_ok(&["user", "show", "mallory"], "");
    assert!(show.stdout.contains("sessions: 1"), "{show:?}");
    app.admin_ok(&["user", "delete", "mallory"], "");
    assert_eq!(welcome_status(&app, &c2).await, 303);
    assert_eq!(
        sign_in(&app, &app.client(), "mallory", "new-password")
            .await
            .status(),
        401
    );
    assert_eq!(app.admin(&["user", "show", "mallory"], "").code, 1);
    assert_eq!(app.admin(&["user", "delete", "mallory"], "").code, 1);
    // The name is free again.
    sign_up(&app, &app.client(), "mallory", "third-password").await;
}

#[tokio::test]
async fn db_check_and_an_online_backup_while_the_server_writes() {
    let app = TestApp::spawn(&[]);
    let c = app.client();
    sign_up(&app, &c, "nina", "nina-password").await;
    let check = app.admin_ok(&["db", "check"], "");
    assert!(check.stdout.contains("integrity: ok"), "{check:?}");
    assert!(check.stdout.contains("(current;"), "{check:?}");

    // Sign-ups keep writing while the backup runs.
    let writer = {
        let app_url = app.url("");
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            for i in 0..20 {
                let _ = client.get(format!("{app_url}/sign-up")).send().await;
                let _ = i;
            }
        })
    };
    let copy = app.dir.path().join("copy.database");
    let run = app.admin_ok(&["db", "backup", copy.to_str().unwrap()], "");
    assert!(run.stderr.contains("backed up 1 users"), "{run:?}");
    writer.await.unwrap();
    let db = rusqlite::Connection::open(&copy).unwrap();
    let name: String = db
        .query_row("SELECT username FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "nina");
    drop(db);
    // The copy is a working database: a server started on it signs nina in.
    let check = admin_at(&copy, &["db", "check"], "");
    assert_eq!(check.code, 0, "{check:?}");
    let run = app.admin(&["db", "backup", copy.to_str().unwrap()], "");
    assert_eq!(run.code, 1, "never overwrites");

    // A damaged file fails the check with exit code 1.
    let broken = app.dir.path().join("broken.database");
    let mut bytes = std::fs::read(&copy).unwrap();
    let half = bytes.len() / 2;
    for b in &mut bytes[half..] {
        *b = 0x5a;
    }
    std::fs::write(&broken, bytes).unwrap();
    let run = admin_at(&broken, &["db", "check"], "");
    assert_eq!(run.code, 1, "{run:?}");
}

#[tokio::test]
async fn commands_on_a_missing_database_refuse_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing.database");
    for args in [
        vec!["user", "list"],
        vec!["user", "disable", "x_user"],
        vec!["session", "list"],
        vec!["db", "check"],
        vec!["audit"],
    ] {
        let run = admin_at(&db, &args, "");
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains("no database"), "{args:?}: {run:?}");
    }
    assert!(!db.exists());
}

#[tokio::test]
async fn sign_up_closed_leaves_only_the_admin_to_create_users() {
    let app = TestApp::spawn(&["--sign-up", "closed"]);
    let c = app.client();
    let sign_in_page = page_text(&app, &c, "/sign-in").await;
    assert!(
        !sign_in_page.contains("href=\"/sign-up\""),
        "no link to a closed page"
    );
    let page = c.get(app.url("/sign-up")).send().await.unwrap();
    assert_eq!(page.status(), 403);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("accounts are created by the administrator")
    );
    let token = csrf_token(&app, &c, "/sign-in").await;
    let r = post_form(
        &app,
        &c,
        "/sign-up",
        &token,
        &[
            ("username", "oscar"),
            ("password", "oscar-password"),
            ("password_repeat", "oscar-password"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    let api = c
        .post(app.url("/api/users"))
        .json(&serde_json::json!({"username": "oscar", "password": "oscar-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("administrator"));
    let users: i64 = app
        .db()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);

    app.admin_ok(&["user", "add", "oscar"], "oscar-password\n");
    assert_eq!(
        sign_in(&app, &c, "oscar", "oscar-password").await.status(),
        303
    );
}
