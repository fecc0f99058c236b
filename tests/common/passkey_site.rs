//! Passkeys over HTTP without a browser: the site reached as `http://localhost:PORT` (no
//! `--public-url`: the RP ID is then `localhost`), or at its loopback address with the
//! authenticator told another origin, and the page's JSON calls the script would make, answered
//! by [`super::soft_authenticator`].

use serde_json::{Value, json};

use super::http::hidden_value;
use super::server::TestApp;
use super::soft_authenticator::{Lies, SoftKey};

pub const PASSKEY_PASSWORD: &str = "correct horse battery";

/// The site as `http://localhost:PORT`, and clients that reach it so.
pub struct Local<'a> {
    pub app: &'a TestApp,
    /// Where requests go.
    pub base: String,
    /// The origin the authenticator is told the page has.
    pub origin: String,
}

impl<'a> Local<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let port = app.address.rsplit(':').next().unwrap().to_owned();
        Self {
            app,
            base: format!("http://localhost:{port}"),
            origin: format!("http://localhost:{port}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> reqwest::Client {
        let addr: std::net::SocketAddr = self
            .app
            .address
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .resolve("localhost", addr)
            .build()
            .unwrap()
    }

    pub async fn token(&self, c: &reqwest::Client, path: &str) -> String {
        let html = c
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        hidden_value(&html, "csrf_token").unwrap_or_else(|| panic!("no token on {path}: {html}"))
    }

    pub async fn form(
        &self,
        c: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        c.post(self.url(path)).form(fields).send().await.unwrap()
    }

    pub async fn json(&self, c: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        let r = c.post(self.url(path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A signed-up, signed-in client and its /account token.
    pub async fn member(&self, name: &str) -> (reqwest::Client, String) {
        let c = self.client();
        let token = self.token(&c, "/sign-up").await;
        let r = self
            .form(
                &c,
                "/sign-up",
                &[
                    ("username", name),
                    ("password", PASSKEY_PASSWORD),
                    ("password_repeat", PASSKEY_PASSWORD),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "sign-up of {name}");
        let token = self.token(&c, "/account").await;
        (c, token)
    }

    /// `POST /account/passkeys/options` for a passkey named `name`: (status, body).
    pub async fn start_registration(
        &self,
        c: &reqwest::Client,
        token: &str,
        name: &str,
    ) -> (u16, Value) {
        self.json(
            c,
            "/account/passkeys/options",
            json!({"csrf_token": token, "name": name}),
        )
        .await
    }

    /// Registers a passkey named `name` with a new software key; asserts the 201.
    pub async fn register(&self, c: &reqwest::Client, token: &str, name: &str) -> SoftKey {
        let (status, started) = self.start_registration(c, token, name).await;
        assert_eq!(status, 200, "{started}");
        let (key, answer) =
            SoftKey::register(&started["publicKey"], &self.origin, &Lies::default());
        let (status, body) = self
            .json(
                c,
                "/account/passkeys",
                json!({"csrf_token": token, "ceremony": started["ceremony"], "credential": answer}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        key
    }

    /// Starts a sign-in from a fresh anonymous client: (client, token, ceremony, publicKey).
    pub async fn start_sign_in(&self) -> (reqwest::Client, String, Value) {
        let c = self.client();
        let token = self.token(&c, "/sign-in").await;
        let (status, started) = self
            .json(&c, "/sign-in/passkey/options", json!({"csrf_token": token}))
            .await;
        assert_eq!(status, 200, "{started}");
        (c, token, started)
    }

    /// `POST /sign-in/passkey` from `c` with its token, a ceremony id and an answer:
    /// (status, body).
    pub async fn finish_sign_in(
        &self,
        c: &reqwest::Client,
        token: &str,
        ceremony: &Value,
        credential: Value,
    ) -> (u16, Value) {
        self.json(
            c,
            "/sign-in/passkey",
            json!({"csrf_token": token, "ceremony": ceremony, "credential": credential}),
        )
        .await
    }

    /// A whole sign-in with `key` from a fresh anonymous client, answered honestly:
    /// (client, status, body).
    pub async fn sign_in_with(&self, key: &mut SoftKey) -> (reqwest::Client, u16, Value) {
        let (c, token, started) = self.start_sign_in().await;
        let answer = key.sign(&started["publicKey"], &self.origin, &Lies::default());
        let (status, body) = self
            .finish_sign_in(&c, &token, &started["ceremony"], answer)
            .await;
        (c, status, body)
    }
}
