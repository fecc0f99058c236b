//! The audit trail (issue 5): the rows each action writes, per-episode aggregation of locked
//! and throttled attempts, `gatehouse audit`, retention, and the activity on `/account`.

use crate::common::*;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

fn browser(ua: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(ua)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_action_writes_one_row_with_who_where_and_outcome() {
    let app = TestApp::spawn(&[]);
    let c = browser(FIREFOX);
    sign_up(&app, &c, "alice", "alice-password").await; // sign_up ok (+ sign_in ok at sign-up)
    let c2 = browser(FIREFOX);
    assert_eq!(
        sign_in(&app, &c2, "alice", "wrong-password").await.status(),
        401
    );
    assert_eq!(
        sign_in(&app, &c2, "alice", "alice-password").await.status(),
        303
    );
    assert_eq!(
        change_password(&app, &c2, "not-it-at-all", "new-password")
            .await
            .status(),
        401
    );
    assert_eq!(
        change_password(&app, &c2, "alice-password", "alice-password-2")
            .await
            .status(),
        303
    );
    sign_in(&app, &c, "alice", "alice-password-2").await;
    // Revoke c2's session from c.
    let token = csrf_token(&app, &c, "/account").await;
    let c2_id: i64 = app
        .db()
        .query_row("SELECT min(id) FROM sessions", [], |r| r.get(0))
        .unwrap();
    let r = post_form(
        &app,
        &c,
        &format!("/account/sessions/{c2_id}/revoke"),
        &token,
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    let token = csrf_token(&app, &c, "/sign-out").await;
    assert_eq!(
        post_form(&app, &c, "/sign-out", &token, &[]).await.status(),
        303
    );
    let r = sign_up_form(&app, &app.client(), "alice", "other-password").await;
    assert_eq!(r.status(), 409);
    app.admin_ok(&["user", "unlock", "alice"], "");

    let expected = [
        ("sign_up", "ok"),
        ("sign_in", "ok"),
        ("sign_in", "failed"),
        ("sign_in", "ok"),
        ("password_change", "failed"),
        ("password_change", "ok"),
        ("sign_in", "ok"),
        ("session_revoke", "ok"),
        ("sign_out", "ok"),
        ("sign_up", "taken"),
        ("admin.user.unlock", "ok"),
    ];
    let rows = app.audit_rows(|r| r.len() >= expected.len()).await;
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.event.as_str(), r.outcome.as_str()))
        .collect();
    // The sign-in at sign-up is written with the session; sign_up ok goes through the queue,
    // so those two may land in either order.
    let mut sorted_got = got.clone();
    let mut sorted_expected = expected.to_vec();
    sorted_got.sort();
    sorted_expected.sort();
    assert_eq!(sorted_got, sorted_expected, "{rows:#?}");
    for r in &rows {
        assert_eq!(r.username.as_deref(), Some("alice"), "{r:?}");
        assert_eq!(r.count, 1);
        if r.event.starts_with("admin.") {
            assert!(r.detail.as_deref().unwrap().contains("by uid"), "{r:?}");
            continue;
        }
        assert_eq!(r.ip.as_deref(), Some("127.0.0.1"), "{r:?}");
        assert_eq!(r.user_agent.as_deref().unwrap_or(FIREFOX), FIREFOX);
        if r.outcome != "taken" {
            assert!(r.user_id.is_some(), "{r:?}");
        }
    }
    let revoke = rows.iter().find(|r| r.event == "session_revoke").unwrap();
    assert_eq!(
        revoke.detail.as_deref(),
        Some(format!("session {c2_id}").as_str())
    );
    // Nothing secret in the trail.
    for r in &rows {
        let all = format!("{r:?}");
        assert!(!all.contains("alice-password"), "{all}");
    }
}

#[tokio::test]
async fn locked_and_throttled_attempts_are_one_row_per_episode() {
    let app = TestApp::spawn(&["--ip-failures", "40"]);
    sign_up(&app, &app.client(), "bob", "bob-password").await;
    let c = app.client();
    fail_three_times(&app, &c, "bob").await;
    for _ in 0..25 {
        assert_eq!(
            sign_in(&app, &c, "bob", "wrong-password").await.status(),
            429
        );
    }
    let rows = app
        .audit_rows(|r| r.iter().any(|r| r.outcome == "locked" && r.count == 25))
        .await;
    let locked: Vec<_> = rows.iter().filter(|r| r.outcome == "locked").collect();
    assert_eq!(locked.len(), 1, "{rows:#?}");
    assert_eq!(locked[0].count, 25);
    assert!(locked[0].last_at >= locked[0].at);
    assert_eq!(
        rows.iter()
            .filter(|r| r.is("sign_in", "failed", "bob"))
            .count(),
        3
    );

    // 28 failures so far from 127.0.0.1; 12 more reach the address limit, then it throttles
    // every username, in one row.
    for i in 0..12 {
        sign_in(&app, &app.client(), &format!("nobody{i}"), "wrong-password").await;
    }
    for i in 0..30 {
        let r = sign_in(&app, &app.client(), &format!("rotating{i}"), "x-password").await;
        assert_eq!(r.status(), 429);
    }
    let rows = app
        .audit_rows(|r| r.iter().any(|r| r.outcome == "throttled" && r.count >= 30))
        .await;
    let throttled: Vec<_> = rows.iter().filter(|r| r.outcome == "throttled").collect();
    assert_eq!(throttled.len(), 1, "{throttled:#?}");
    assert!(throttled[0].count >= 30);
    assert_eq!(throttled[0].ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn gatehouse_audit_filters_by_user_event_and_time() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "carol", "carol-password").await;
    sign_up(&app, &app.client(), "dave", "dave-password").await;
    assert_eq!(
        sign_in(&app, &app.client(), "carol", "wrong-password")
            .await
            .status(),
        401
    );
    app.audit_rows(|r| r.iter().any(|r| r.is("sign_in", "failed", "carol")))
        .await;

    let run = app.admin_ok(&["audit", "--user", "Carol"], "");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("time\tevent\toutcome\tusername"),
        "{run:?}"
    );
    assert!(
        lines[1..].iter().all(|l| l.contains("\tcarol\t")),
        "{run:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\tsign_in\tfailed\tcarol\t")),
        "{run:?}"
    );

    let run = app.admin_ok(&["audit", "--event", "sign_up", "--since", "2h"], "");
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "header + 2 sign-ups: {run:?}"
    );
    let run = app.admin_ok(&["audit", "--since", "2999-01-01T00:00:00Z"], "");
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    let run = app.admin_ok(
        &["audit", "--since", "2000-01-01T00:00:00Z", "--user", "dave"],
        "",
    );
    assert!(run.stdout.lines().count() >= 2, "{run:?}");
    assert_eq!(app.admin(&["audit", "--since", "yesterdayish"], "").code, 2);
    // Reading the trail is itself audited.
    let rows = app
        .audit_rows(|r| r.iter().any(|r| r.event == "admin.audit"))
        .await;
    assert!(rows.iter().any(|r| r.event == "admin.audit"));
}

#[tokio::test]
async fn old_events_go_after_the_retention_period() {
    let app = TestApp::spawn(&["--audit-retention", "2s", "--session-idle", "4s"]);
    sign_up(&app, &app.client(), "erin", "erin-password").await;
    let rows = app.audit_rows(|r| !r.is_empty()).await;
    assert!(!rows.is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let n: i64 = app
            .db()
            .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} events outlived the retention"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn account_page_shows_recent_sign_ins_and_failures_since_the_previous_one() {
    let app = TestApp::spawn(&[]);
    let first = browser(FIREFOX);
    sign_up(&app, &first, "frank", "frank-password").await;
    let page = page_text(&app, &first, "/account").await;
    assert!(
        page.contains("No failed sign-in attempts since your previous sign-in."),
        "{page}"
    );
    assert!(page.contains("Firefox 140 on Linux"), "{page}");
    assert!(page.contains("<td>127.0.0.1</td>"), "{page}");

    // Someone else guesses twice, then the owner signs in again from another browser.
    for _ in 0..2 {
        assert_eq!(
            sign_in(&app, &app.client(), "frank", "guess-password")
                .await
                .status(),
            401
        );
    }
    // Failures reach the database through the background writer (up to 100 ms later); the
    // page counts what is stored when the owner next signs in.
    app.audit_rows(|rows| {
        rows.iter()
            .filter(|r| r.outcome == "failed" && r.username.as_deref() == Some("frank"))
            .count()
            == 2
    })
    .await;
    let second = browser("curl/8.5.0");
    assert_eq!(
        sign_in(&app, &second, "frank", "frank-password")
            .await
            .status(),
        303
    );
    let page = page_text(&app, &second, "/account").await;
    assert!(
        page.contains("2 failed sign-in attempts on your username since your previous sign-in"),
        "{page}"
    );
    let activity = &page[page.find("Recent activity").unwrap()..];
    let (curl, firefox) = (
        activity.find("curl 8").unwrap(),
        activity.find("Firefox 140").unwrap(),
    );
    assert!(curl < firefox, "newest first");
    // The next sign-in starts a clean slate.
    let third = app.client();
    assert_eq!(
        sign_in(&app, &third, "frank", "frank-password")
            .await
            .status(),
        303
    );
    let page = page_text(&app, &third, "/account").await;
    assert!(page.contains("No failed sign-in attempts"), "{page}");
}
