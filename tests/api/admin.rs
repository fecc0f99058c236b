//! Admin commands against a running server on the same database (issue 5): each takes effect
//! on the very next request, exits 0 / 1 / 2, and never takes a password from argv.

use crate::both_backends;
use crate::common::*;

both_backends!(
    user_add_uses_the_site_rules_and_the_user_signs_in_on_the_running_server,
    disable_ends_sessions_at_once_and_enable_lets_the_user_back,
    unlock_lets_a_locked_user_sign_in_at_once,
    session_list_shows_public_ids_and_revoke_ends_that_session_only,
    purge_expired_deletes_only_dead_sessions,
    set_password_replaces_it_and_ends_sessions_and_delete_removes_the_user,
    sign_up_closed_leaves_only_the_admin_to_create_users,
);

async fn welcome_status(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(app.url("/welcome"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn user_add_uses_the_site_rules_and_the_user_signs_in_on_the_running_server(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
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
    let stored = app
        .query_text("SELECT password_hash FROM users WHERE username = 'carol'")
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
    let users = app.query_i64("SELECT count(*) FROM users");
    assert_eq!(users, 1, "refused adds create nothing");

    // A password on the command line is a usage error: it would be visible in `ps`.
    let run = app.admin(&["user", "add", "frank", "frank-password"], "");
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(app.admin(&["user"], "").code, 2);
    assert_eq!(app.admin(&["session", "revoke", "seven"], "").code, 2);
    assert_eq!(app.admin(&["no-such-command"], "").code, 2);
}

async fn disable_ends_sessions_at_once_and_enable_lets_the_user_back(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    sign_up(&app, &c, "grace", "grace-password").await;
    assert_eq!(welcome_status(&app, &c).await, 200);

    app.admin_ok(&["user", "disable", "Grace"], "");
    assert!(
        honoured(&app, async || welcome_status(&app, &c).await == 303).await,
        "signed out on the next request"
    );
    let r = sign_in(&app, &app.client(), "grace", "grace-password").await;
    assert_answer(r, 401, "The username or password is incorrect.").await;
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

async fn unlock_lets_a_locked_user_sign_in_at_once(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
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

async fn session_list_shows_public_ids_and_revoke_ends_that_session_only(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
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
    assert!(
        honoured(&app, async || welcome_status(&app, &b).await == 303).await,
        "b is signed out"
    );
    assert_eq!(welcome_status(&app, &a).await, 200, "a is not");

    let run = app.admin(&["session", "revoke", &newest.to_string()], "");
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no session"));
}

async fn purge_expired_deletes_only_dead_sessions(b: Backend) {
    let app = TestApp::spawn_on(b, &["--session-idle", "1h"]);
    let c = app.client();
    sign_up(&app, &c, "kim", "kim-password").await;
    sign_up(&app, &app.client(), "lee", "lee-password").await;
    let expired = app.execute_sql(
        "UPDATE sessions SET expires_at = 0 \
         WHERE user_id = (SELECT id FROM users WHERE username = 'lee')",
    );
    assert_eq!(expired, 1);
    let run = app.admin_ok(&["session", "purge-expired"], "");
    assert!(run.stderr.contains("deleted 1 expired"), "{run:?}");
    assert_eq!(app.query_i64("SELECT count(*) FROM sessions"), 1);
    assert_eq!(welcome_status(&app, &c).await, 200);
}

async fn set_password_replaces_it_and_ends_sessions_and_delete_removes_the_user(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let c = app.client();
    sign_up(&app, &c, "mallory", "old-password").await;
    app.admin_ok(&["user", "set-password", "mallory"], "new-password\r\n");
    assert!(
        honoured(&app, async || welcome_status(&app, &c).await == 303).await,
        "sessions ended"
    );
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
    assert!(honoured(&app, async || welcome_status(&app, &c2).await == 303).await);
    assert_eq!(
        sign_in(&app, &app.client(), "mallory", "new-password")
            .await
            .status(),
        401
    );
    assert_eq!(app.admin(&["user", "show", "mallory"], "").code, 1);
    assert_eq!(app.admin(&["user", "delete", "mallory"], "").code, 1);
    // The name is retired, not free again (docs/behaviour.md §11.3).
    let r = sign_up_form(&app, &app.client(), "mallory", "third-password").await;
    assert_eq!(r.status(), 409);
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

async fn sign_up_closed_leaves_only_the_admin_to_create_users(b: Backend) {
    let app = TestApp::spawn_on(b, &["--sign-up", "closed"]);
    let c = app.client();
    let sign_in_page = page_text(&app, &c, "/sign-in").await;
    assert!(
        !sign_in_page.contains("href=\"/sign-up\""),
        "no link to a closed page"
    );
    let page = c.get(app.url("/sign-up")).send().await.unwrap();
    assert_answer(page, 403, "accounts are created by the administrator").await;
    let r = submit_form(
        &app,
        &c,
        "/sign-in",
        "/sign-up",
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
    assert_eq!(app.query_i64("SELECT count(*) FROM users"), 0);

    app.admin_ok(&["user", "add", "oscar"], "oscar-password\n");
    assert_eq!(
        sign_in(&app, &c, "oscar", "oscar-password").await.status(),
        303
    );
}

// Issue 10, point 6: help that helps, settings anywhere on the line, progress on stderr.

/// Runs `gatehouse ARGS` with only `env` set, `stdin` as its input (not a terminal).
fn gatehouse_with_env(args: &[&str], env: &[(&str, &std::path::Path)], stdin: &str) -> AdminRun {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gatehouse");
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("gatehouse output");
    AdminRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn help(words: &[&str]) -> String {
    let args: Vec<&str> = words.iter().copied().chain(["--help"]).collect();
    let run = gatehouse_with_env(&args, &[], "");
    assert_eq!(run.code, 0, "gatehouse {args:?}: {run:?}");
    run.stdout
}

#[test]
fn each_subcommand_help_shows_its_own_options_and_not_the_server_flags() {
    let add = help(&["user", "add"]);
    assert!(add.contains("--email <EMAIL>"), "{add}");
    assert!(add.contains("Email address (optional; unique"), "{add}");
    assert!(add.contains("--full-name"), "{add}");
    assert!(add.contains("<USERNAME>") && add.contains("3–32"), "{add}");
    assert!(
        add.contains("--database") && add.contains("GATEHOUSE_DATABASE"),
        "{add}"
    );
    assert!(add.contains("--argon2-m"), "{add}");
    for server_only in [
        "--ip-kdf-rate",
        "--bind",
        "--ip-failures",
        "--tls-cert",
        "--workers",
    ] {
        assert!(
            !add.contains(server_only),
            "user add --help lists {server_only}:\n{add}"
        );
    }
    for words in [
        &["user"][..],
        &["user", "list"],
        &["user", "set-password"],
        &["session", "revoke"],
        &["session", "list"],
        &["db", "backup"],
        &["db", "check"],
        &["import-seed"],
        &["audit"],
    ] {
        let text = help(words);
        assert!(!text.contains("--ip-kdf-rate"), "{words:?}:\n{text}");
        assert!(!text.contains("--session-max"), "{words:?}:\n{text}");
        // Every option and argument line has a description after its name.
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with('-') || l.trim_start().starts_with('<'))
        {
            let name_and_help: Vec<&str> = line.trim().splitn(2, "  ").collect();
            assert!(
                name_and_help.len() == 2 && name_and_help[1].trim().len() > 3,
                "gatehouse {words:?}: no description on {line:?}"
            );
        }
    }
    assert!(help(&["session", "revoke"]).contains("public id"));
    assert!(help(&["db", "backup"]).contains("--database"));
    assert!(help(&["import-seed"]).contains("--kdf-threads"));
    assert!(help(&["audit"]).contains("--since"));
    for words in [&[][..], &["serve"]] {
        let text = help(words);
        for flag in [
            "--ip-kdf-rate",
            "--bind",
            "--database",
            "--session-max",
            "--tls-cert",
        ] {
            assert!(
                text.contains(flag),
                "gatehouse {words:?} --help lacks {flag}:\n{text}"
            );
        }
    }
}

#[test]
fn admin_commands_take_the_database_anywhere_on_the_line_and_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("here.database");
    let d = db.to_str().unwrap();
    let fast = FAST_KDF;
    let with = |words: &[&str]| -> Vec<String> {
        words.iter().chain(fast).map(|s| s.to_string()).collect()
    };
    let add = |args: Vec<String>, env: &[(&str, &std::path::Path)], name: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = gatehouse_with_env(&args, env, &format!("{name}-password\n"));
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    };
    add(
        with(&["user", "add", "after", "--database", d]),
        &[],
        "after",
    );
    add(
        with(&["--database", d, "user", "add", "before"]),
        &[],
        "before",
    );
    add(
        with(&["user", "--database", d, "add", "between"]),
        &[],
        "between",
    );
    add(
        with(&[
            "user",
            "add",
            "--database",
            d,
            "amid",
            "--email",
            "amid@example.org",
        ]),
        &[],
        "amid",
    );
    add(
        with(&["user", "add", "from_env"]),
        &[("GATEHOUSE_DATABASE", &db)],
        "from_env",
    );
    // A flag beats the environment.
    let elsewhere = dir.path().join("elsewhere.database");
    add(
        with(&["user", "add", "flag_wins", "--database", d]),
        &[("GATEHOUSE_DATABASE", &elsewhere)],
        "flag_wins",
    );
    assert!(!elsewhere.exists());
    let names = [
        "after",
        "before",
        "between",
        "amid",
        "from_env",
        "flag_wins",
    ];
    for list in [
        vec!["user", "list", "--database", d],
        vec!["--database", d, "user", "list"],
        vec!["user", "--database", d, "list"],
        vec!["user", "list"],
    ] {
        let run = gatehouse_with_env(&list, &[("GATEHOUSE_DATABASE", &db)], "");
        assert_eq!(run.code, 0, "{list:?}: {run:?}");
        for name in names {
            assert!(
                run.stdout.contains(&format!("\t{name}\t")),
                "{list:?}: {run:?}"
            );
        }
    }
    // Server flags an admin command does not show are still accepted (wrapper scripts pass
    // them to every command).
    let run = gatehouse_with_env(
        &[
            "audit",
            "--database",
            d,
            "--ip-kdf-rate",
            "0",
            "--bind",
            "127.0.0.1:0",
        ],
        &[],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
}

/// The last progress line of `task` on stderr.
fn last_progress_line<'a>(stderr: &'a str, task: &str) -> &'a str {
    stderr
        .lines()
        .rfind(|l| l.starts_with(&format!("{task}: ")))
        .unwrap_or_else(|| panic!("no {task} progress line in {stderr}"))
}

#[test]
fn db_backup_reports_its_progress_on_stderr_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.database");
    let fill = admin_at(
        &db,
        &["bench-data", "--users", "30000", "--sign-in-users", "1"],
        "",
    );
    assert_eq!(fill.code, 0, "{fill:?}");
    let copy = dir.path().join("copy.database");
    let run = admin_at(&db, &["db", "backup", copy.to_str().unwrap()], "");
    assert_eq!(run.code, 0, "{run:?}");
    let first = run
        .stderr
        .lines()
        .find(|l| l.starts_with("db backup: "))
        .unwrap();
    assert!(first.starts_with("db backup: 0.0/"), "{run:?}");
    let last = last_progress_line(&run.stderr, "db backup");
    // "db backup: 6.1/6.1 MiB copied (100%, 0 s)"
    let counts = last["db backup: ".len()..].split(' ').next().unwrap();
    let (done, total) = counts.split_once('/').unwrap();
    assert_eq!(done, total, "{last}");
    assert!(total.parse::<f64>().unwrap() >= 1.0, "{last}");
    assert!(last.contains("MiB copied (100%"), "{last}");
    assert!(run.stderr.contains("backed up 30000 users"), "{run:?}");
}
