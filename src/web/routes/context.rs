//! Per-request plumbing shared by the handlers: who is signed in, CSRF tokens and checks,
//! strict form reading, and the redirect to a signed sign-in URL.

use actix_web::cookie::Cookie;
use actix_web::http::header;
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};

use crate::accounts::Client;
use crate::security::csrf::{self, Binding};
use crate::security::redirect::{self, LocalPath};
use crate::security::session;
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;
use crate::web::forms::{self, FormData};

/// A valid session of the request.
pub struct Current {
    pub session_id: i64,
    pub token_hash: [u8; 32],
    pub user: User,
}

/// The visitor: their session if valid, and their anonymous CSRF cookie if any.
pub struct Visitor {
    pub current: Option<Current>,
    /// The hash of whatever well-formed session cookie came in, valid or not (to replace it).
    pub presented: Option<[u8; 32]>,
    csrf_cookie: Option<String>,
}

impl Visitor {
    /// Reads the cookies and looks the session up. A missing, malformed, unknown or expired
    /// cookie means anonymous.
    pub async fn of(req: &HttpRequest, state: &AppState) -> Result<Self, AppError> {
        let policy = &state.sessions;
        let header = cookie_header(req);
        let csrf_cookie = session::cookie_value(&header, policy.csrf_cookie_name())
            .map(|v| v.into_owned())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        let Some(id) = session::session_from_header(&header, policy.cookie_name()) else {
            return Ok(Self {
                current: None,
                presented: None,
                csrf_cookie,
            });
        };
        let token_hash = id.hash();
        let current = match state.store.session(&token_hash).await? {
            Some(rec) => {
                let now = crate::clock::now_ms();
                if session::is_valid(&rec.state, policy, now) {
                    if now - rec.state.last_seen_ms >= policy.touch_interval_ms() {
                        state.store.touch_later(rec.id, now);
                    }
                    Some(Current {
                        session_id: rec.id,
                        token_hash,
                        user: rec.user,
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
            csrf_cookie,
        })
    }

    pub fn user(&self) -> Option<&User> {
        self.current.as_ref().map(|c| &c.user)
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
        check_origin(req, state)?;
        let mut bindings = Vec::with_capacity(2);
        if let Some(c) = &self.current {
            bindings.push(Binding::Session(&c.token_hash));
        }
        if let Some(v) = &self.csrf_cookie {
            bindings.push(Binding::Anonymous(v));
        }
        if csrf::verify(&state.key, form.text("csrf_token"), &bindings) {
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
    if csrf::origin_allowed(origin, &site) {
        Ok(())
    } else {
        tracing::debug!(?origin, %site, "cross-origin request refused");
        Err(AppError::Forbidden(
            "This request came from another site and was refused.",
        ))
    }
}

/// Reads an HTML form body: 413 → 415 → 400, in that order.
pub async fn read_form(req: &HttpRequest, payload: Payload) -> Result<FormData, AppError> {
    let body = forms::read_body(req, payload).await?;
    forms::require_media_type(
        req,
        "application/x-www-form-urlencoded",
        "Forms must be sent as application/x-www-form-urlencoded.",
    )?;
    let form = FormData::parse(&body)?;
    if tracing::enabled!(tracing::Level::DEBUG) {
        // Names only, never values: lets a test see that no plain password was sent.
        let mut names: Vec<&str> = form.names().collect();
        names.sort_unstable();
        tracing::debug!(path = req.path(), fields = ?names, "form received");
    }
    Ok(form)
}

pub fn client(req: &HttpRequest, state: &AppState) -> Client {
    let addr = crate::web::request::client_ip(req, &state.trusted_proxies);
    let header = cookie_header(req);
    Client {
        addr,
        device: session::cookie_value(&header, state.sessions.device_cookie_name())
            .map(|v| v.into_owned()),
        ip: addr.map(|ip| ip.to_string()),
        user_agent: crate::web::request::user_agent(req),
    }
}

/// 303 to the sign-in page with a signed `next` back to `path`.
pub fn to_sign_in(state: &AppState, path: &str) -> HttpResponse {
    let next =
        LocalPath::parse(path).unwrap_or_else(|| LocalPath::parse("/welcome").expect("literal"));
    super::see_other(&format!(
        "/sign-in?{}",
        redirect::sign_in_query(&state.key, &next)
    ))
}

/// Adds the session and device cookies of a successful sign-in.
pub fn signed_in(
    mut resp: HttpResponse,
    state: &AppState,
    signed_in: crate::accounts::SignedIn,
) -> HttpResponse {
    let _ = resp.add_cookie(&state.sessions.session_cookie(&signed_in.session));
    let _ = resp.add_cookie(&state.sessions.device_cookie(signed_in.device_token));
    resp
}

/// Adds `cookie` to `resp` when present.
pub fn with_cookie(mut resp: HttpResponse, cookie: Option<Cookie<'static>>) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

/// A 403 page that also gives the browser a CSRF cookie, so a reload can succeed.
pub fn forbidden(visitor: &Visitor, state: &AppState, e: AppError) -> HttpResponse {
    let (_, cookie) = visitor.anonymous_token(state);
    with_cookie(e.html(), cookie)
}
