//! `/auth/request` (nginx `auth_request`) and `/auth/forward` (Caddy `forward_auth`, Traefik
//! `ForwardAuth`): a reverse proxy asks, for every request to an app it guards, whether the
//! browser's session is good, and passes the user on in `Remote-*` headers (docs/behaviour.md
//! §10.2).
//!
//! These answers go to the proxy, not to a person: any method is answered alike, no body is
//! ever read (an nginx subrequest carries the original `Content-Length` and no body), no cookie
//! is set, no failure is counted, and nothing stands between the request and the session lookup
//! (no CSRF or `Origin` check: they change nothing).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use crate::domain::GroupName;
use crate::security::forward::{self, ReturnUrl};
use crate::state::{AppState, State};
use crate::web::error::AppError;
use crate::web::request;
use crate::web::visitor::{Current, Visitor};

/// How a proxy wants "sign in first" said.
#[derive(Clone, Copy)]
enum Style {
    /// nginx turns the 401 into a redirect itself (`error_page 401`), reading `Location`.
    Status401,
    /// Caddy and Traefik pass a non-2xx answer to the browser as it is.
    Redirect302,
}

pub async fn request(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    answer(&req, &state, Style::Status401).await
}

pub async fn forward(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    answer(&req, &state, Style::Redirect302).await
}

async fn answer(
    req: &HttpRequest,
    state: &AppState,
    style: Style,
) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(req, state).await?;
    let Some(current) = visitor.current else {
        return Ok(sign_in_first(req, state, style));
    };
    let required = match required_groups(req) {
        Ok(groups) => groups,
        Err(typed) => {
            tracing::warn!(group = %typed, "forward-auth asked for an invalid group name: refused");
            return Ok(not_in_group(req));
        }
    };
    if !required
        .iter()
        .all(|g| current.groups.iter().any(|have| have == g.as_str()))
    {
        return Ok(not_in_group(req));
    }
    Ok(identity(&current))
}

/// 200 with the five identity headers, each present (empty when unset) so that no proxy
/// substitutes a placeholder of its own.
fn identity(current: &Current) -> HttpResponse {
    let user = &current.user;
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    for (name, value) in [
        ("Remote-User", user.username.clone()),
        ("Remote-User-Id", user.id.to_string()),
        ("Remote-Name", user.full_name.clone().unwrap_or_default()),
        ("Remote-Email", verified_email(current).unwrap_or_default()),
        ("Remote-Groups", current.groups.join(",")),
    ] {
        // Field rules keep control characters out of names; UTF-8 bytes are sent as they are.
        let value = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        resp.insert_header((name, value));
    }
    resp.finish()
}

/// An app may treat `Remote-Email` as proof the user owns the address, so it carries only an
/// address the user confirmed (§11.3).
fn verified_email(current: &Current) -> Option<String> {
    current
        .user
        .email
        .clone()
        .filter(|_| current.email_verified)
}

/// The `?group=` names, all of which the user must be in; `Err` with the first invalid one.
fn required_groups(req: &HttpRequest) -> Result<Vec<GroupName>, String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "group")
        .map(|(_, v)| GroupName::parse(&v).map_err(|_| v.into_owned()))
        .collect()
}

fn not_in_group(req: &HttpRequest) -> HttpResponse {
    let mut resp = crate::web::respond::error(
        req,
        &AppError::Forbidden("Your account is not in a group this page needs."),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 401 (nginx) or 302 (Caddy, Traefik) to the sign-in page, carrying the signed address of the
/// page the browser wanted when a trusted proxy said which and it may be returned to.
fn sign_in_first(req: &HttpRequest, state: &AppState, style: Style) -> HttpResponse {
    let rd = original_url(req, state).and_then(|u| ReturnUrl::parse(&u, &state.forward));
    let base = match &state.public_url {
        Some(url) => url.clone(),
        None => request::site_origin(req, None, &state.trusted_proxies),
    };
    let location = forward::sign_in_url(&base, &state.key, rd.as_ref());
    let status = match style {
        Style::Status401 => StatusCode::UNAUTHORIZED,
        Style::Redirect302 => StatusCode::FOUND,
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if req.method() == Method::HEAD {
        return resp.finish();
    }
    resp.content_type("text/plain; charset=utf-8")
        .body("Sign in first.\n")
}

/// The URL the browser asked the proxy for: `X-Original-URL` (nginx), else
/// `X-Forwarded-Proto` + `-Host` + `-Uri` (Caddy, Traefik); only from a trusted proxy, since
/// anyone else could name any address.
fn original_url(req: &HttpRequest, state: &AppState) -> Option<String> {
    if !request::peer_is_trusted(req, &state.trusted_proxies) {
        return None;
    }
    let one = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(url) = one("x-original-url") {
        return Some(url.to_owned());
    }
    let proto = one("x-forwarded-proto")?.split(',').next()?.trim();
    let host = one("x-forwarded-host")?.split(',').next()?.trim();
    let uri = one("x-forwarded-uri").unwrap_or("/");
    uri.starts_with('/')
        .then(|| format!("{proto}://{host}{uri}"))
}
