//! Who is asking: the visitor's session (or none), their anonymous CSRF cookie, and the client
//! facts the flows record (address, device cookie, user agent). Also the CSRF tokens and the
//! `Origin` check (docs/design.md, "Extractors and responses").

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;
use actix_web::http::header;

use crate::accounts::Client;
use crate::security::csrf::{self, Binding};
use crate::security::session;
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;
use crate::web::forms::FormData;
use crate::web::templates::Chrome;

/// A valid session of the request.
pub struct Current {
    pub session_id: i64,
    pub token_hash: [u8; 32],
    pub user: User,
    /// The user's groups, sorted.
    pub groups: Vec<String>,
    /// Whether `user.email` is confirmed.
    pub email_verified: bool,
}

/// The visitor: their session if valid, and their anonymous CSRF cookie if any. Taken by
/// handlers as an extractor (see the `extract` module).
pub struct Visitor {
    pub current: Option<Current>,
    /// The hash of whatever well-formed session cookie came in, valid or not (to replace it).
    pub presented: Option<[u8; 32]>,
    /// Address, device cookie and user agent, for the flows' limits and audit.
    pub client: Client,
    csrf_cookie: Option<String>,
    /// The site's `--sign-up` setting, for the page header.
    sign_up: bool,
}

impl Visitor {
    /// Reads the cookies and looks the session up. A missing, malformed, unknown or expired
    /// cookie means anonymous.
    pub async fn of(req: &HttpRequest, state: &AppState) -> Result<Self, AppError> {
        let policy = &state.sessions;
        let header = cookie_header(req);
        let client = client(req, &header, state);
        let sign_up = state.sign_up_open;
        let csrf_cookie = session::cookie_value(&header, policy.csrf_cookie_name())
            .map(|v| v.into_owned())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        // Two session cookies: one may be planted, and nothing says which (the answer expires
        // the host-only one; see `web::session::drop_shadowed_session`).
        let name = policy.cookie_name();
        let single = session::cookie_count(&header, name) <= 1;
        let Some(id) = session::session_from_header(&header, name).filter(|_| single) else {
            return Ok(Self {
                current: None,
                presented: None,
                client,
                csrf_cookie,
                sign_up,
            });
        };
        let token_hash = id.hash();
        let current = match state.store.session(&token_hash).await? {
            Some(rec) => {
                let now = state.clock.now().as_ms();
                if session::is_valid(&rec.state, policy, now) {
                    if now - rec.state.last_seen_ms >= policy.touch_interval_ms() {
                        state.store.touch_later(rec.id, now);
                    }
                    Some(Current {
                        session_id: rec.id,
                        token_hash,
                        user: rec.user,
                        groups: rec.groups,
                        email_verified: rec.email_verified,
                    })
                } else {
                    None
                }
            }
            None => None,
        };
        Ok(Self {
            current,
            presented: Some(token_hash),
            client,
            csrf_cookie,
            sign_up,
        })
    }

    pub fn user(&self) -> Option<&User> {
        self.current.as_ref().map(|c| &c.user)
    }

    /// The layout of a page titled `title` as this visitor sees it.
    pub fn chrome(&self, title: &'static str) -> Chrome {
        Chrome::new(title, self.user(), self.sign_up)
    }

    /// The token for an anonymous form, and the cookie to set when the browser has none yet.
    pub fn anonymous_token(&self, state: &AppState) -> (String, Option<Cookie<'static>>) {
        match &self.csrf_cookie {
            Some(v) => (csrf::token(&state.key, &Binding::Anonymous(v)), None),
            None => {
                let v = csrf::new_cookie_value();
                let token = csrf::token(&state.key, &Binding::Anonymous(&v));
                (token, Some(state.sessions.csrf_cookie(v)))
            }
        }
    }

    /// The token for a signed-in form.
    pub fn session_token(&self, state: &AppState) -> Option<String> {
        self.current
            .as_ref()
            .map(|c| csrf::token(&state.key, &Binding::Session(&c.token_hash)))
    }

    /// The `Origin` check, then the token against every binding the browser holds.
    pub fn check_csrf(
        &self,
        req: &HttpRequest,
        state: &AppState,
        form: &FormData,
    ) -> Result<(), AppError> {
        self.check_csrf_token(req, state, form.text("csrf_token"))
    }

    /// [`Visitor::check_csrf`] for a token that came in another body (a JSON one).
    pub fn check_csrf_token(
        &self,
        req: &HttpRequest,
        state: &AppState,
        token: &str,
    ) -> Result<(), AppError> {
        check_origin(req, state)?;
        let mut bindings = Vec::with_capacity(2);
        if let Some(c) = &self.current {
            bindings.push(Binding::Session(&c.token_hash));
        }
        if let Some(v) = &self.csrf_cookie {
            bindings.push(Binding::Anonymous(v));
        }
        if csrf::verify(&state.key, token, &bindings) {
            Ok(())
        } else {
            tracing::debug!("CSRF token missing or invalid");
            Err(AppError::Forbidden(
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ))
        }
    }
}

/// All `Cookie` headers of the request joined into one (HTTP/2 may split them).
fn cookie_header(req: &HttpRequest) -> String {
    let mut joined = String::new();
    for v in req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
    {
        if !joined.is_empty() {
            joined.push_str("; ");
        }
        joined.push_str(v);
    }
    joined
}

/// Refuses a request whose `Origin` is `null` or another site.
pub fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), AppError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    let site =
        crate::web::request::site_origin(req, state.public_url.as_deref(), &state.trusted_proxies);
    // A one-time link's page is served with `Referrer-Policy: no-referrer` (§11.2), and browsers
    // then send `Origin: null` with its own form's POST: there `null` is the page itself. The
    // CSRF token and the link's unguessable token still stand; another site's origin does not.
    let own_null = origin == Some("null") && is_link_page(req.path());
    if own_null || csrf::origin_allowed(origin, &site) {
        Ok(())
    } else {
        tracing::debug!(?origin, %site, "cross-origin request refused");
        Err(AppError::Forbidden(
            "This request came from another site and was refused.",
        ))
    }
}

/// The pages a one-time link opens (they post to themselves).
fn is_link_page(path: &str) -> bool {
    ["/password-reset/", "/verify-email/"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    })
}

/// The client facts alone, without a session lookup.
pub fn client_of(req: &HttpRequest, state: &AppState) -> Client {
    client(req, &cookie_header(req), state)
}

fn client(req: &HttpRequest, header: &str, state: &AppState) -> Client {
    let addr = crate::web::request::client_ip(req, &state.trusted_proxies);
    Client {
        addr,
        device: session::cookie_value(header, state.sessions.device_cookie_name())
            .map(|v| v.into_owned()),
        ip: addr.map(|ip| ip.to_string()),
        user_agent: crate::web::request::user_agent(req),
    }
}
