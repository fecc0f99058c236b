//! HTTP helpers: clients, hidden form values, CSRF tokens, the no-JS forms, cookies and
//! redirects.

use super::server::TestApp;

/// The value of `name="NAME" value="…"` in a page (hidden inputs).
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// GETs `path` with `client` and returns the body.
pub async fn page_text(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// GETs `path` and returns its CSRF token (the client keeps the cookie).
pub async fn csrf_token(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let html = page_text(app, client, path).await;
    hidden_value(&html, "csrf_token").unwrap_or_else(|| panic!("no csrf_token on {path}:\n{html}"))
}

/// POSTs a form: the fields as given, plus `token` as its CSRF token.
pub async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    token: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("csrf_token", token));
    client.post(app.url(path)).form(&all).send().await.unwrap()
}

/// GETs `page` for its CSRF token, then POSTs `fields` with it to `action`.
pub async fn submit_form(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf_token(app, client, page).await;
    post_form(app, client, action, &token, fields).await
}

/// POSTs each of `forms` to `path` at once, each from a fresh client with its own CSRF token;
/// their statuses, in the order given.
pub async fn post_in_parallel(
    app: &TestApp,
    path: &str,
    forms: impl IntoIterator<Item = Vec<(&'static str, String)>>,
) -> Vec<u16> {
    post_in_parallel_across(&[app], path, forms).await
}

/// [`post_in_parallel`] spread over several instances in turn (the first form to `apps[0]`,
/// the second to `apps[1]`, …).
pub async fn post_in_parallel_across(
    apps: &[&TestApp],
    path: &str,
    forms: impl IntoIterator<Item = Vec<(&'static str, String)>>,
) -> Vec<u16> {
    let mut tasks = Vec::new();
    for (i, mut form) in forms.into_iter().enumerate() {
        let app = apps[i % apps.len()];
        let c = app.client();
        form.push(("csrf_token", csrf_token(app, &c, path).await));
        let url = app.url(path);
        tasks.push(tokio::spawn(async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            r.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

/// How many of `statuses` are `status`.
pub fn count_of(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Asserts that `r` answered `status` with a body that contains `text`.
pub async fn assert_answer(r: reqwest::Response, status: u16, text: &str) {
    assert_eq!(r.status(), status);
    let body = r.text().await.unwrap();
    assert!(body.contains(text), "no {text:?} in:\n{body}");
}

/// GETs `/welcome` with exactly this session cookie; true when it is accepted.
pub async fn cookie_works(app: &TestApp, cookie: &str) -> bool {
    let (c, header) = with_cookie(cookie);
    c.get(app.url("/welcome"))
        .header("cookie", header)
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

/// Posts the no-JS sign-up form (plain password, repeated) and returns the response.
pub async fn sign_up_form(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    submit_form(
        app,
        client,
        "/sign-up",
        "/sign-up",
        &[
            ("username", username),
            ("password", password),
            ("password_repeat", password),
        ],
    )
    .await
}

/// Signs up through the no-JS form (plain password); asserts the 303.
pub async fn sign_up(app: &TestApp, client: &reqwest::Client, username: &str, password: &str) {
    let r = sign_up_form(app, client, username, password).await;
    assert_eq!(
        r.status(),
        303,
        "sign-up of {username}: {}",
        r.text().await.unwrap()
    );
}

/// Signs in through the form with a plain password; returns the response.
pub async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    submit_form(
        app,
        client,
        "/sign-in",
        "/sign-in",
        &[("username", username), ("password", password)],
    )
    .await
}

/// Three wrong passwords for `username` from `client`, each a 401: the next attempt is locked.
pub async fn fail_three_times(app: &TestApp, client: &reqwest::Client, username: &str) {
    for _ in 0..3 {
        assert_eq!(
            sign_in(app, client, username, "wrong-password")
                .await
                .status(),
            401
        );
    }
}

/// Changes a signed-in client's password through the no-JS account form.
pub async fn change_password(
    app: &TestApp,
    client: &reqwest::Client,
    old: &str,
    new: &str,
) -> reqwest::Response {
    let token = csrf_token(app, client, "/account").await;
    post_form(
        app,
        client,
        "/account/password",
        &token,
        &[
            ("current_password", old),
            ("new_password", new),
            ("new_password_repeat", new),
        ],
    )
    .await
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The session cookie's value from a response's Set-Cookie headers.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix("session=")
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
}

/// A bare client that sends `session=VALUE` by hand (no jar).
pub fn with_cookie(cookie: &str) -> (reqwest::Client, String) {
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (c, format!("session={cookie}"))
}
