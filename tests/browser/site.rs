//! Steps and checks shared by the browser tests: filling and submitting Gatehouse's forms,
//! reading what Chrome sent and what the server logged, and the docs/behaviour.md §2 digest in
//! Rust.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha512};
use unicode_normalization::UnicodeNormalization;

use crate::driver::{Browser, WAIT};

/// Plain password fields that must never leave a browser with JavaScript on.
pub const PLAIN_FIELDS: [&str; 5] = [
    "password",
    "password_repeat",
    "current_password",
    "new_password",
    "new_password_repeat",
];

/// The message every failed sign-in shows (docs/behaviour.md §3: one generic message).
pub const GENERIC_FAILURE: &str = "The username or password is incorrect.";

/// docs/behaviour.md §2 computed independently in Rust: base64(SHA-512(canonical username ‖ NFKC
/// password)).
pub fn digest(username: &str, password: &str) -> String {
    let user = username.trim().to_ascii_lowercase();
    let password: String = password.nfkc().collect();
    let mut h = Sha512::new();
    h.update(user.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

pub fn sha512_hex(bytes: &[u8]) -> String {
    Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the README's screenshots go.
pub fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
        .join(format!("{name}.png"))
}

/// Fills the inputs with the given ids, presses the form's submit button and waits for the
/// next document; returns its path and query.
pub async fn submit(b: &Browser, action: &str, fields: &[(&str, &str)]) -> String {
    for (id, value) in fields {
        b.fill(&format!("#{id}"), value).await;
    }
    press_submit(b, action).await;
    wait_new_page(b, action).await
}

/// Marks the current document (a new one lacks the mark) and presses the form's button.
pub async fn press_submit(b: &Browser, action: &str) {
    b.exec("window.__gatehouseOldPage = true; return null", json!([]))
        .await;
    b.click(&format!("form[action=\"{action}\"] button[type=submit]"))
        .await;
}

pub async fn wait_new_page(b: &Browser, action: &str) -> String {
    let v = b
        .wait_js(
            &format!("the page after submitting {action}"),
            "return (!window.__gatehouseOldPage && document.readyState === 'complete')
                ? location.pathname + location.search : null",
            json!([]),
        )
        .await;
    v.as_str().unwrap().to_owned()
}

/// The sign-out page's button; lands on /sign-in.
pub async fn sign_out(b: &Browser, origin: &str) {
    b.goto(&format!("{origin}/sign-out")).await;
    let lede = text(b, ".lede").await;
    assert_eq!(
        lede, "Sign out of Gatehouse on this browser?",
        "the sign-out page should know who is signed in"
    );
    assert_eq!(submit(b, "/sign-out", &[]).await, "/sign-in");
    assert_eq!(
        text(b, ".notice").await,
        "You are signed out.",
        "the sign-in page should say the sign-out worked"
    );
    let who = b
        .exec("return document.querySelector('.who') === null", json!([]))
        .await;
    assert_eq!(
        who,
        json!(true),
        "the header still names a user after signing out"
    );
}

/// The trimmed text of the first element matching `css` ("" when none).
pub async fn text(b: &Browser, css: &str) -> String {
    b.exec(
        "const el = document.querySelector(arguments[0]);
         return el ? el.textContent.replace(/\\s+/g, ' ').trim() : ''",
        json!([css]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// One form POST as Chrome sent it.
#[derive(Debug)]
pub struct FormPost {
    pub path: String,
    pub raw: String,
    pub fields: Vec<(String, String)>,
}

impl FormPost {
    pub fn names(&self) -> BTreeSet<String> {
        self.fields.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every POST Chrome sent to `origin`, from its performance log; waits until there are at least
/// `at_least` (the log can trail the page by a moment).
pub async fn form_posts(b: &Browser, origin: &str, at_least: usize) -> Vec<FormPost> {
    let prefix = format!("{origin}/");
    let deadline = Instant::now() + WAIT;
    loop {
        let posts: Vec<FormPost> = b
            .sent_requests()
            .await
            .into_iter()
            .filter(|r| r.method == "POST" && r.url.starts_with(&prefix))
            .map(|r| {
                let raw = r
                    .body
                    .unwrap_or_else(|| panic!("Chrome logged no body for POST {}", r.url));
                FormPost {
                    path: r.url[origin.len()..].to_owned(),
                    fields: form_urlencoded::parse(raw.as_bytes())
                        .into_owned()
                        .collect(),
                    raw,
                }
            })
            .collect();
        if posts.len() >= at_least || Instant::now() > deadline {
            return posts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's `form received path="…" fields=[…]` debug lines: (path, field names).
pub fn server_forms(log: &str) -> Vec<(String, BTreeSet<String>)> {
    log.lines()
        .filter(|l| l.contains("form received"))
        .map(|line| {
            let path = line
                .split("path=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("no path in {line}"))
                .to_owned();
            let list = line
                .split("fields=[")
                .nth(1)
                .and_then(|r| r.split(']').next())
                .unwrap_or_else(|| panic!("no fields in {line}"));
            let names = list
                .split(',')
                .map(|n| n.trim().trim_matches('"').to_owned())
                .filter(|n| !n.is_empty())
                .collect();
            (path, names)
        })
        .collect()
}

/// The forms in which a password could appear on the wire or in a log.
pub fn password_forms(password: &str) -> Vec<String> {
    let nfkc: String = password.nfkc().collect();
    let mut forms = vec![password.to_owned(), nfkc.clone()];
    for p in [password, nfkc.as_str()] {
        forms.push(form_urlencoded::byte_serialize(p.as_bytes()).collect());
    }
    forms.sort();
    forms.dedup();
    forms
}

/// A `*_digest` value as docs/behaviour.md §2 wants it on the wire: 88 characters of padded base64
/// that decode to 64 bytes.
pub fn assert_wire_digest(value: &str, what: &str) {
    assert_eq!(
        value.len(),
        88,
        "{what}: digest {value:?} is not 88 characters"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap_or_else(|e| panic!("{what}: digest {value:?} is not base64: {e}"));
    assert_eq!(bytes.len(), 64, "{what}: digest is not 64 bytes");
}

/// Asserts that the browser's POSTs and the server's log of field names tell the same story,
/// one entry per expected form.
pub fn assert_server_saw_same_fields(posts: &[FormPost], log: &str) {
    let logged = server_forms(log);
    let sent: Vec<(String, BTreeSet<String>)> =
        posts.iter().map(|p| (p.path.clone(), p.names())).collect();
    assert_eq!(
        logged, sent,
        "the server's `form received` lines differ from what Chrome sent"
    );
}
