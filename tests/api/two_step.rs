//! Authenticator codes (docs/behaviour.md §13.1) through the real pages and the JSON API, with
//! codes computed here from the secret the set-up page shows.

use gatehouse::security::totp::{STEP, TotpSecret};

use crate::both_backends;
use crate::common::*;

both_backends!(
    set_up_needs_a_right_code_and_sign_in_then_asks_for_one,
    codes_are_single_use_and_recovery_codes_work_once,
    a_known_password_buys_no_more_code_guesses_than_the_lock_allows,
    a_pending_sign_in_expires_is_bound_to_its_user_and_dies_with_a_password_change,
    turning_off_needs_the_password_and_a_code_and_reset_2fa_removes_codes,
    a_right_password_alone_clears_nothing_and_a_device_is_exempt_from_the_name_lock_only,
);

const PASSWORD: &str = "correct horse battery";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The set-up page's secret and the codes the test computes from it.
struct App {
    secret: TotpSecret,
    /// The last time step this test used (the server refuses it and every earlier one).
    last: u64,
}

impl App {
    /// A code for a step later than any used, within the server's one step of skew.
    fn next_code(&mut self) -> String {
        let step = (self.last + 1).max(now() / STEP);
        assert!(step <= now() / STEP + 1, "no unused step is valid yet");
        self.last = step;
        self.secret.code_at(step * STEP)
    }
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = html.find(start)? + start.len();
    Some(&html[i..i + html[i..].find(end)?])
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Signs `name` up and starts a set-up; the secret shown.
async fn start_set_up(app: &TestApp, c: &reqwest::Client, name: &str) -> TotpSecret {
    sign_up(app, c, name, PASSWORD).await;
    let r = submit_form(app, c, "/account", "/account/two-step/setup", &[]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let b32 = between(&html, "id=\"totp-secret\">", "<").expect("the secret on the page");
    assert!(html.contains("otpauth://totp/"), "the otpauth URI");
    assert!(html.contains(&format!("secret={b32}")));
    assert!(html.contains("<svg"), "an inline SVG QR code");
    assert!(!html.contains("data:image"), "no data: URI");
    let bytes = totp_rs::Secret::Encoded(b32.to_owned()).to_bytes().unwrap();
    TotpSecret::from_bytes(&bytes).unwrap()
}

/// Signs up `name` with codes on; the test's code source and the recovery codes.
async fn with_codes(app: &TestApp, name: &str) -> (App, Vec<String>) {
    let c = app.client();
    let secret = start_set_up(app, &c, name).await;
    let step = now() / STEP;
    let code = secret.code_at(step * STEP);
    let r = submit_form(
        app,
        &c,
        "/account",
        "/account/two-step/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let list = between(&html, "id=\"recovery-codes\">", "</ul>").expect("recovery codes shown");
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let again = page_text(app, &c, "/account").await;
    assert!(!again.contains(&codes[0]), "shown once");
    assert!(again.contains("id=\"recovery-left\">10<"));
    (App { secret, last: step }, codes)
}

/// The password step: 303 to the code form with a pending cookie.
async fn password_step(app: &TestApp, c: &reqwest::Client, name: &str) -> reqwest::Response {
    let r = sign_in(app, c, name, PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in/code");
    r
}

/// Posts a code, with the anonymous CSRF token of the sign-in page (the code form itself
/// is gone once the pending sign-in is).
async fn send_code(app: &TestApp, c: &reqwest::Client, code: &str) -> reqwest::Response {
    submit_form(app, c, "/sign-in", "/sign-in/code", &[("code", code)]).await
}

async fn signed_in(app: &TestApp, c: &reqwest::Client) -> bool {
    c.get(app.url("/welcome")).send().await.unwrap().status() == 200
}

async fn set_up_needs_a_right_code_and_sign_in_then_asks_for_one(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    // A wrong confirmation keeps codes off.
    let c = app.client();
    let secret = start_set_up(&app, &c, "ann").await;
    let wrong = format!(
        "{:06}",
        (secret.code_at(now()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = submit_form(
        &app,
        &c,
        "/account",
        "/account/two-step/confirm",
        &[("code", &wrong)],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text().await.unwrap().contains("id=\"totp-secret\""),
        "the set-up again"
    );
    let r = sign_in(&app, &app.client(), "ann", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome", "not on before confirmation");

    // Confirmed: the password step opens no session and issues no device cookie.
    let (mut codes, recovery) = with_codes(&app, "bob").await;
    let c = app.client();
    let anon = c.get(app.url("/account")).send().await.unwrap();
    let signed_next = location(&anon);
    let next_page = signed_next.clone();
    let token = csrf_token(&app, &c, &next_page).await;
    let query: Vec<(String, String)> =
        form_urlencoded::parse(signed_next.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    let mut fields: Vec<(&str, &str)> = vec![("username", "bob"), ("password", PASSWORD)];
    for (k, v) in &query {
        fields.push((k.as_str(), v.as_str()));
    }
    let r = post_form(&app, &c, "/sign-in", &token, &fields).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/sign-in/code");
    let cookies = set_cookies(&r);
    let pending = cookies
        .iter()
        .find(|c| c.starts_with("pending_sign_in="))
        .expect("a pending cookie");
    assert!(pending.contains("HttpOnly"), "{pending}");
    assert!(
        cookies
            .iter()
            .all(|c| !c.starts_with("session=") && !c.starts_with("device=")),
        "{cookies:?}"
    );
    assert!(
        !signed_in(&app, &c).await,
        "a pending sign-in is not a session"
    );
    let form = c.get(app.url("/sign-in/code")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"code\""));
    // A wrong code: 401 and the form again.
    let r = send_code(&app, &c, "000000").await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("name=\"code\""));
    // The confirmation's own code is refused (replay).
    let confirmation = codes.secret.code_at(codes.last * STEP);
    assert_eq!(send_code(&app, &c, &confirmation).await.status(), 401);
    // The right code: a session, a device cookie and the original `next`.
    let r = send_code(&app, &c, &codes.next_code()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    let cookies = set_cookies(&r);
    assert!(cookies.iter().any(|c| c.starts_with("session=")));
    assert!(cookies.iter().any(|c| c.starts_with("device=")));
    assert!(signed_in(&app, &c).await);
    // The pending record is gone.
    assert_eq!(app.query_i64("SELECT count(*) FROM pending_sign_ins"), 0);

    // JSON: without a code 401 code_required, with one 204.
    let api = |body: serde_json::Value| {
        let c = app.client();
        let url = app.url("/api/session");
        async move { c.post(url).json(&body).send().await.unwrap() }
    };
    let r = api(serde_json::json!({"username": "bob", "password": PASSWORD})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"error": "code_required"})
    );
    let r =
        api(serde_json::json!({"username": "bob", "password": "wrong password", "code": "123456"}))
            .await;
    assert_eq!(r.status(), 401);
    let r = api(serde_json::json!({"username": "bob", "password": PASSWORD, "code": recovery[0]}))
        .await;
    assert_eq!(r.status(), 204);
    assert!(session_cookie(&r).is_some());
}

async fn codes_are_single_use_and_recovery_codes_work_once(b: Backend) {
    // Room for this test's refused codes and password under the lock.
    let app = TestApp::spawn_on(b, &["--lock-attempts", "10"]);
    let (mut codes, recovery) = with_codes(&app, "ann").await;
    let c = app.client();
    password_step(&app, &c, "ann").await;
    let code = codes.next_code();
    assert_eq!(send_code(&app, &c, &code).await.status(), 303);
    // The same code again, in another browser: refused.
    let other = app.client();
    password_step(&app, &other, "ann").await;
    assert_eq!(send_code(&app, &other, &code).await.status(), 401);
    // A recovery code works once (typed in lower case, without its dash).
    let typed = recovery[3].replace('-', "").to_lowercase();
    assert_eq!(send_code(&app, &other, &typed).await.status(), 303);
    let third = app.client();
    password_step(&app, &third, "ann").await;
    assert_eq!(send_code(&app, &third, &recovery[3]).await.status(), 401);
    let page = page_text(&app, &other, "/account").await;
    assert!(page.contains("id=\"recovery-left\">9<"), "one used");
    // New recovery codes need the current password, and replace the old ones.
    let r = submit_form(
        &app,
        &other,
        "/account",
        "/account/two-step/recovery-codes",
        &[("current_password", "wrong password")],
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = submit_form(
        &app,
        &other,
        "/account",
        "/account/two-step/recovery-codes",
        &[("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"recovery-codes\""));
    assert_eq!(
        send_code(&app, &third, &recovery[4]).await.status(),
        401,
        "old codes are gone"
    );
    let events = app.query_i64(
        "SELECT count(*) FROM audit_events WHERE event = 'recovery_codes' AND outcome IN ('used', 'renewed')",
    );
    assert!(events >= 1, "audited");
}

async fn a_known_password_buys_no_more_code_guesses_than_the_lock_allows(b: Backend) {
    let app = TestApp::spawn_on(b, &["--ip-failures", "1000"]);
    let (mut codes, _) = with_codes(&app, "ann").await;
    let c = app.client();
    password_step(&app, &c, "ann").await;
    let token = csrf_token(&app, &c, "/sign-in/code").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (c, url, token) = (c.clone(), app.url("/sign-in/code"), token.clone());
        tasks.push(tokio::spawn(async move {
            let code = format!("{:06}", 100_000 + i);
            c.post(url)
                .form(&[("code", code.as_str()), ("csrf_token", &token)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(count_of(&statuses, 401), 3, "{statuses:?}");
    assert_eq!(count_of(&statuses, 429), 5, "{statuses:?}");
    // Locked: even the right code is refused, with Retry-After, and so is the password step.
    let r = send_code(&app, &c, &codes.next_code()).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert!(!signed_in(&app, &c).await);
    assert_eq!(
        sign_in(&app, &app.client(), "ann", PASSWORD).await.status(),
        429
    );
}

async fn a_pending_sign_in_expires_is_bound_to_its_user_and_dies_with_a_password_change(
    b: Backend,
) {
    let app = TestApp::spawn_on(b, &[]);
    let (mut codes, recovery) = with_codes(&app, "ann").await;
    let (_, bob_recovery) = with_codes(&app, "bob").await;
    // Expired (the record's five minutes are over): refused, and the code is not spent.
    let c = app.client();
    password_step(&app, &c, "ann").await;
    let expires = app.query_i64("SELECT expires_at - created_at FROM pending_sign_ins");
    assert_eq!(expires, 300_000, "five minutes");
    app.execute_sql("UPDATE pending_sign_ins SET expires_at = created_at - 1");
    let r = send_code(&app, &c, &recovery[0]).await;
    assert_eq!(r.status(), 401);
    assert!(!signed_in(&app, &c).await);
    assert_eq!(
        c.get(app.url("/sign-in/code"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    // Bound to its user: bob's recovery code does not complete ann's sign-in.
    let c = app.client();
    password_step(&app, &c, "ann").await;
    assert_eq!(send_code(&app, &c, &bob_recovery[0]).await.status(), 401);
    // A password change ends it.
    let owner = app.client();
    password_step(&app, &owner, "ann").await;
    assert_eq!(
        send_code(&app, &owner, &codes.next_code()).await.status(),
        303
    );
    let r = change_password(&app, &owner, PASSWORD, "a brand new password").await;
    assert_eq!(r.status(), 303);
    let r = send_code(&app, &c, &recovery[0]).await;
    assert_eq!(r.status(), 401);
    assert!(!signed_in(&app, &c).await);
}

async fn turning_off_needs_the_password_and_a_code_and_reset_2fa_removes_codes(b: Backend) {
    let app = TestApp::spawn_on(b, &[]);
    let (mut codes, recovery) = with_codes(&app, "ann").await;
    let c = app.client();
    password_step(&app, &c, "ann").await;
    assert_eq!(send_code(&app, &c, &codes.next_code()).await.status(), 303);
    let off = async |password: &str, code: &str| {
        submit_form(
            &app,
            &c,
            "/account",
            "/account/two-step/off",
            &[("current_password", password), ("code", code)],
        )
        .await
    };
    assert_eq!(off("wrong password", &recovery[0]).await.status(), 401);
    assert_eq!(off(PASSWORD, "").await.status(), 400);
    let r = off(PASSWORD, &recovery[0]).await;
    assert_eq!(r.status(), 303);
    let r = sign_in(&app, &app.client(), "ann", PASSWORD).await;
    assert_eq!(location(&r), "/welcome", "codes are off: {}", r.status());
    assert_eq!(app.query_i64("SELECT count(*) FROM recovery_codes"), 0);

    // reset-2fa: the admin's recovery path.
    let (_, _) = with_codes(&app, "bob").await;
    assert_eq!(
        location(&sign_in(&app, &app.client(), "bob", PASSWORD).await),
        "/sign-in/code"
    );
    let run = app.admin_ok(&["user", "show", "bob"], "");
    assert!(run.stdout.contains("two-step: on"), "{}", run.stdout);
    app.admin_ok(&["user", "reset-2fa", "bob"], "");
    assert_eq!(
        location(&sign_in(&app, &app.client(), "bob", PASSWORD).await),
        "/welcome"
    );
    let run = app.admin_ok(&["user", "show", "bob"], "");
    assert!(run.stdout.contains("two-step: off"), "{}", run.stdout);
    assert_eq!(
        app.query_i64("SELECT count(*) FROM audit_events WHERE event = 'admin.user.reset-2fa' AND outcome = 'ok'"),
        1
    );
    assert!(
        app.query_i64("SELECT count(*) FROM audit_events WHERE event = '2fa' AND outcome = 'off'")
            >= 1
    );

    // The right password does not reset the count of wrong codes at turn-off: the lock's
    // attempts, then 429.
    let (_, recovery) = with_codes(&app, "carl").await;
    let c = app.client();
    password_step(&app, &c, "carl").await;
    assert_eq!(send_code(&app, &c, &recovery[0]).await.status(), 303);
    let off = async |code: &str| {
        submit_form(
            &app,
            &c,
            "/account",
            "/account/two-step/off",
            &[("current_password", PASSWORD), ("code", code)],
        )
        .await
        .status()
    };
    for _ in 0..3 {
        assert_eq!(off("000000").await, 401);
    }
    assert_eq!(off(&recovery[1]).await, 429);
    assert!(
        page_text(&app, &c, "/account")
            .await
            .contains("id=\"recovery-left\">9<"),
        "still on"
    );
}

#[tokio::test]
async fn forward_auth_refuses_a_pending_sign_in() {
    let app = TestApp::spawn(&[
        "--public-url",
        "http://auth.gatehouse.test",
        "--trusted-proxies",
        "127.0.0.1",
        "--forward-domains",
        "gatehouse.test",
    ]);
    let (_, _) = with_codes(&app, "ann").await;
    let c = app.client();
    let r = password_step(&app, &c, "ann").await;
    let pending = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("pending_sign_in="))
        .unwrap();
    let value = pending.split(';').next().unwrap().to_owned();
    let (bare, _) = with_cookie("");
    let r = bare
        .get(app.url("/auth/request"))
        .header("x-original-url", "http://app.gatehouse.test/")
        .header("cookie", value)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("remote-user").is_none());
}

async fn a_right_password_alone_clears_nothing_and_a_device_is_exempt_from_the_name_lock_only(
    b: Backend,
) {
    let app = TestApp::spawn_on(b, &[]);
    let (_, recovery) = with_codes(&app, "ann").await;
    // Two wrong passwords, then the right one: the count stays, so one wrong code locks.
    let attacker = app.client();
    for _ in 0..2 {
        assert_eq!(
            sign_in(&app, &attacker, "ann", "wrong password")
                .await
                .status(),
            401
        );
    }
    password_step(&app, &attacker, "ann").await;
    assert_eq!(send_code(&app, &attacker, "000000").await.status(), 401);
    assert_eq!(send_code(&app, &attacker, &recovery[0]).await.status(), 429);
    assert_eq!(
        sign_in(&app, &attacker, "ann", PASSWORD).await.status(),
        429
    );

    // A browser that completed a sign-in before holds a device cookie: the username's lock does
    // not stop it, but it still needs a code, and its own wrong codes count in its own record.
    let app = TestApp::spawn_on(b, &[]);
    let (_, recovery) = with_codes(&app, "bob").await;
    let owner = app.client();
    password_step(&app, &owner, "bob").await;
    assert_eq!(send_code(&app, &owner, &recovery[0]).await.status(), 303);
    assert_eq!(
        submit_form(&app, &owner, "/sign-out", "/sign-out", &[])
            .await
            .status(),
        303
    );
    fail_three_times(&app, &app.client(), "bob").await;
    assert_eq!(
        sign_in(&app, &app.client(), "bob", PASSWORD).await.status(),
        429
    );
    password_step(&app, &owner, "bob").await;
    assert!(!signed_in(&app, &owner).await, "the device skips no code");
    assert_eq!(send_code(&app, &owner, "000000").await.status(), 401);
    assert_eq!(send_code(&app, &owner, &recovery[1]).await.status(), 303);
    assert!(signed_in(&app, &owner).await);
}
