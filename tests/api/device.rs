//! Device cookies: a browser that signed in as a user is exempt from that username's lock,
//! with its own failure limit; a password change invalidates old device cookies.

use crate::both_backends;
use crate::common::*;

both_backends!(
    the_owners_browser_signs_in_while_the_username_is_locked,
    a_device_has_its_own_failure_limit,
    a_password_change_invalidates_device_cookies,
    the_owner_can_change_the_password_while_the_username_is_locked,
);

async fn lock_out(app: &TestApp, user: &str) {
    let attacker = app.client();
    for _ in 0..3 {
        assert_eq!(
            sign_in(app, &attacker, user, "attacker-guess")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        sign_in(app, &attacker, user, "attacker-guess")
            .await
            .status(),
        429
    );
}

async fn the_owners_browser_signs_in_while_the_username_is_locked(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let owner = app.client();
    sign_up(&app, &owner, "owner", "owner-password").await;
    let r = sign_in(&app, &owner, "owner", "owner-password").await;
    let device = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("device="))
        .expect("device cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(device.contains(part), "{device}");
    }

    lock_out(&app, "owner").await;
    // A browser that never signed in as owner is locked out ...
    assert_eq!(
        sign_in(&app, &app.client(), "owner", "owner-password")
            .await
            .status(),
        429
    );
    // ... the owner's own browser is not.
    assert_eq!(
        sign_in(&app, &owner, "owner", "owner-password")
            .await
            .status(),
        303
    );
    // And the owner's success did not lift the lock for the attacker.
    assert_eq!(
        sign_in(&app, &app.client(), "owner", "attacker-guess")
            .await
            .status(),
        429
    );
    // The device cookie is for this user only.
    sign_up(&app, &app.client(), "neighbour", "neighbour-password").await;
    lock_out(&app, "neighbour").await;
    assert_eq!(
        sign_in(&app, &owner, "neighbour", "neighbour-password")
            .await
            .status(),
        429
    );
}

async fn a_device_has_its_own_failure_limit(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let owner = app.client();
    sign_up(&app, &owner, "fumbler", "fumbler-password").await;
    assert_eq!(
        sign_in(&app, &owner, "fumbler", "fumbler-password")
            .await
            .status(),
        303
    );
    fail_three_times(&app, &owner, "fumbler").await;
    assert_eq!(
        sign_in(&app, &owner, "fumbler", "fumbler-password")
            .await
            .status(),
        429,
        "device locked"
    );
    // Its failures counted for the username too (docs/behaviour.md §4): other browsers are locked
    // as well.
    assert_eq!(
        sign_in(&app, &app.client(), "fumbler", "fumbler-password")
            .await
            .status(),
        429
    );
}

async fn a_password_change_invalidates_device_cookies(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let a = app.client();
    sign_up(&app, &a, "rotating", "first-password").await;
    let b = app.client();
    assert_eq!(
        sign_in(&app, &b, "rotating", "first-password")
            .await
            .status(),
        303
    );
    let r = change_password(&app, &b, "first-password", "second-password").await;
    assert_eq!(r.status(), 303);
    lock_out(&app, "rotating").await;
    assert_eq!(
        sign_in(&app, &a, "rotating", "second-password")
            .await
            .status(),
        429,
        "A's device cookie is stale"
    );
    assert_eq!(
        sign_in(&app, &b, "rotating", "second-password")
            .await
            .status(),
        303,
        "B got a fresh one"
    );
}

async fn the_owner_can_change_the_password_while_the_username_is_locked(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let owner = app.client();
    sign_up(&app, &owner, "besieged", "besieged-password").await;
    lock_out(&app, "besieged").await;
    let r = change_password(&app, &owner, "besieged-password", "fresh-password").await;
    assert_eq!(
        r.status(),
        303,
        "the device cookie from sign-up exempts the owner"
    );
    assert_eq!(
        sign_in(&app, &owner, "besieged", "fresh-password")
            .await
            .status(),
        303
    );
}
