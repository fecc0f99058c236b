//! Races (issue 4 §4): a sign-in that verified the old password cannot leave a session that
//! outlives a concurrent password change or disable, and a rehash cannot bring back an old
//! password. Each scenario is driven concurrently, many times.

use futures_util::future::join_all;

use crate::both_backends;
use crate::common::*;

both_backends!(
    sign_ins_racing_a_password_change_leave_no_old_session,
    sign_ins_racing_a_disable_leave_no_valid_session,
    a_rehash_racing_a_password_change_cannot_restore_the_old_password,
);

const ROUNDS: usize = 12;

/// These tests make many attempts from one address on purpose.
const LIMITS_OFF: &[&str] = &[
    "--ip-failures",
    "0",
    "--ip-kdf-rate",
    "0",
    "--lock-attempts",
    "100000",
];

/// Signs in with `password` on a fresh client; the session cookie when it answered 303.
async fn try_sign_in(app: &TestApp, user: &str, password: &str) -> Option<String> {
    let c = app.client();
    let r = sign_in(app, &c, user, password).await;
    let status = r.status().as_u16();
    assert!(status == 303 || status == 401, "unexpected {status}");
    session_cookie(&r)
}

async fn sign_ins_racing_a_password_change_leave_no_old_session(b: Backend) {
    let app = TestApp::spawn_on(b, LIMITS_OFF);
    for round in 0..ROUNDS {
        let user = format!("racer{round}");
        let (old, new) = (
            format!("old-password-{round}"),
            format!("new-password-{round}"),
        );
        let owner = app.client();
        sign_up(&app, &owner, &user, &old).await;
        let sign_ins = join_all((0..6).map(|_| try_sign_in(&app, &user, &old)));
        let (results, changed) = tokio::join!(sign_ins, async {
            change_password(&app, &owner, &old, &new)
                .await
                .status()
                .as_u16()
        });
        assert_eq!(changed, 303);
        let cookies: Vec<String> = results.into_iter().flatten().collect();
        for cookie in &cookies {
            assert!(
                !cookie_works(&app, cookie).await,
                "round {round}: an old-password session survived"
            );
        }
        assert!(try_sign_in(&app, &user, &old).await.is_none());
        assert!(try_sign_in(&app, &user, &new).await.is_some());
    }
}

async fn sign_ins_racing_a_disable_leave_no_valid_session(b: Backend) {
    let app = TestApp::spawn_on(b, LIMITS_OFF);
    for round in 0..ROUNDS {
        let user = format!("sleeper{round}");
        sign_up(&app, &app.client(), &user, "sleeper-password").await;
        let sign_ins = join_all((0..6).map(|_| try_sign_in(&app, &user, "sleeper-password")));
        let disable = async {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let sql = format!("UPDATE users SET active = false WHERE username = '{user}'");
            assert_eq!(app.execute_sql(&sql), 1);
        };
        let (results, ()) = tokio::join!(sign_ins, disable);
        let cookies: Vec<String> = results.into_iter().flatten().collect();
        for cookie in &cookies {
            assert!(
                honoured(&app, async || !cookie_works(&app, cookie).await).await,
                "round {round}: a disabled user's session is valid"
            );
        }
    }
}

async fn a_rehash_racing_a_password_change_cannot_restore_the_old_password(b: Backend) {
    let mut app = TestApp::spawn_on(b, LIMITS_OFF);
    let users: Vec<String> = (0..ROUNDS).map(|i| format!("rehash{i}")).collect();
    for u in &users {
        sign_up(&app, &app.client(), u, "before-password").await;
    }
    // New costs: every successful sign-in now schedules a rehash of the old password.
    app.restart_with(&[LIMITS_OFF, &["--argon2-m", "96"]].concat());
    for u in &users {
        let owner = app.client();
        assert_eq!(
            sign_in(&app, &owner, u, "before-password").await.status(),
            303
        );
        let sign_ins = join_all((0..4).map(|_| try_sign_in(&app, u, "before-password")));
        let (_, changed) = tokio::join!(
            sign_ins,
            change_password(&app, &owner, "before-password", "after-password")
        );
        assert_eq!(changed.status(), 303);
        // Let any background rehash land, then check which password works.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            try_sign_in(&app, u, "before-password").await.is_none(),
            "{u}: old password came back"
        );
        assert!(
            try_sign_in(&app, u, "after-password").await.is_some(),
            "{u}"
        );
    }
}
