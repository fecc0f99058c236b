//! Every page fits a phone (issue 10, point 4): at 320–390 CSS pixels nothing scrolls sideways.
//!
//! The measure is `document.documentElement.scrollWidth <= clientWidth` on an emulated mobile
//! viewport. `innerWidth` would prove nothing: a phone widens the layout viewport to fit wide
//! content, so `innerWidth` grows with the overflow it should reveal.

use serde_json::{Value, json};

use crate::common::{self, TestApp};
use crate::driver::{Browser, Js};
use crate::site::{screenshot_path, submit, text};

/// The phone widths checked on every page; 360 is the common Android width.
const WIDTHS: [u32; 3] = [320, 360, 390];

/// What one page measures at one width.
const MEASURE: &str = "
    const root = document.documentElement;
    const wide = [];
    // Visually hidden text sits in a 1 px clipped box; it cannot push anything off-screen.
    const clipped = el => {
      for (let a = el; a; a = a.parentElement) {
        const r = a.getBoundingClientRect();
        if (r.width <= 1 || r.height <= 1) return true;
      }
      return false;
    };
    for (const el of document.querySelectorAll('a, button, input:not([type=hidden]), td, th, h1, h2, p, dd')) {
      if (clipped(el)) continue;
      const r = el.getBoundingClientRect();
      if (r.left < -0.5 || r.right > root.clientWidth + 0.5) {
        wide.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' ['
          + Math.round(r.left) + ', ' + Math.round(r.right) + ']: '
          + (el.textContent || el.value || '').trim().slice(0, 40));
      }
    }
    return { scroll: root.scrollWidth, client: root.clientWidth, off_screen: wide.slice(0, 8) };";

/// Measures the current page at each phone width; returns one line per problem.
async fn problems_here(b: &Browser, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for width in WIDTHS {
        b.emulate_phone(width).await;
        // The new metrics apply at the next layout; the viewport meta makes clientWidth the
        // device width, whatever the content does.
        b.wait_js(
            &format!("{what} laid out at {width} px"),
            "return document.readyState === 'complete' && document.documentElement.clientWidth === arguments[0]",
            json!([width]),
        )
        .await;
        let m: Value = b.exec(MEASURE, json!([])).await;
        let (scroll, client) = (m["scroll"].as_u64().unwrap(), m["client"].as_u64().unwrap());
        if scroll > client {
            problems.push(format!(
                "{what} at {width} px: scrollWidth {scroll} > clientWidth {client}"
            ));
        }
        for el in m["off_screen"].as_array().unwrap() {
            problems.push(format!("{what} at {width} px: off-screen {el}"));
        }
    }
    problems
}

async fn visit(b: &Browser, origin: &str, path: &str, problems: &mut Vec<String>) {
    b.goto(&format!("{origin}{path}")).await;
    problems.extend(problems_here(b, path).await);
}

/// A reqwest client that announces itself with a long desktop user agent (the sessions table
/// shows the browser and keeps the whole user agent in a tooltip).
fn desktop_client(ua: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(ua)
        .build()
        .unwrap()
}

#[tokio::test]
async fn no_page_scrolls_sideways_on_a_phone() {
    let _turn = crate::ONE_BROWSER.lock().await;
    let app = TestApp::spawn(&[]);
    let origin = format!("http://127.0.0.1:{}", app.port);
    // The longest username the rules allow, so the header and tables carry the widest text.
    let user = "a_rather_long_username_for_tests";
    let pw = "phone width password 1";

    // Several sessions (each with a revoke button on /account) and sign-ins for the activity
    // table, from other "devices".
    let first = desktop_client(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0",
    );
    common::sign_up(&app, &first, user, pw).await;
    for ua in [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "curl/8.5.0",
    ] {
        let c = desktop_client(ua);
        let r = common::sign_in(&app, &c, user, pw).await;
        assert_eq!(r.status(), 303, "sign-in as {ua}");
    }

    let b = Browser::launch(Js::On).await;
    b.emulate_phone(360).await;
    let mut problems = Vec::new();

    // Signed out.
    for path in [
        "/sign-in",
        "/sign-up",
        "/sign-out",
        "/no-such-page/with/a/rather/long/path/that/goes/on",
    ] {
        visit(&b, &origin, path, &mut problems).await;
    }
    // The sign-up form with the server's messages (the script does not check emails).
    b.goto(&format!("{origin}/sign-up")).await;
    let at = submit(
        &b,
        "/sign-up",
        &[
            ("username", "someone_new"),
            ("password", pw),
            ("password_repeat", pw),
            ("email", "not-an-email-address-at-all-but-quite-long"),
        ],
    )
    .await;
    assert_eq!(at, "/sign-up", "a bad email stays on the form");
    assert!(
        !text(&b, ".form-errors").await.is_empty(),
        "the server's error summary is shown"
    );
    problems.extend(problems_here(&b, "/sign-up with errors").await);

    // Signed in.
    b.goto(&format!("{origin}/sign-in")).await;
    let at = submit(&b, "/sign-in", &[("username", user), ("password", pw)]).await;
    assert_eq!(at, "/welcome");
    problems.extend(problems_here(&b, "/welcome").await);
    visit(&b, &origin, "/account", &mut problems).await;
    let rows = b
        .exec(
            "return [document.querySelectorAll('table.sessions button').length,
                     document.querySelectorAll('table.activity tbody tr').length]",
            json!([]),
        )
        .await;
    assert!(
        rows[0].as_u64() >= Some(4) && rows[1].as_u64() >= Some(4),
        "[revoke buttons, recent sign-ins] on /account: {rows}"
    );
    b.screenshot_phone(&screenshot_path("account-phone"), 360)
        .await;

    // Pages this wide also make clicks miss (the phone zooms out): say so before clicking.
    assert!(
        problems.is_empty(),
        "pages scroll sideways on a phone:\n{}",
        problems.join("\n")
    );

    // A wrong current password: the account page again, with messages.
    let at = submit(
        &b,
        "/account/password",
        &[
            ("current_password", "not the password"),
            ("new_password", "another password 2"),
            ("new_password_repeat", "another password 2"),
        ],
    )
    .await;
    assert_eq!(at, "/account/password");
    assert!(
        !text(&b, "#current_password-error").await.is_empty(),
        "a message is shown"
    );
    problems.extend(problems_here(&b, "/account after a password-change error").await);

    assert!(
        problems.is_empty(),
        "pages scroll sideways on a phone:\n{}",
        problems.join("\n")
    );
    b.quit().await;
}
