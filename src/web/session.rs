//! The browser's session on the web side: the cookies a sign-in sets, ending a session (the
//! sign-out page and `DELETE /api/session`), and the one-time "you are signed out" flash
//! cookie shared by `/sign-out` and `/sign-in`.

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::state::{AppState, State};
use crate::web::error::AppError;
use crate::web::visitor::Visitor;

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

/// Deletes the browser's session server-side (valid or not).
pub async fn end_session(state: &State, visitor: &Visitor) -> Result<(), AppError> {
    state
        .accounts
        .sign_out(visitor.presented, visitor.user(), &visitor.client)
        .await?;
    Ok(())
}

/// The flash cookie's name. Its path is `/sign-in` (sent nowhere else), which the `__Host-`
/// prefix forbids; `__Secure-` still keeps a plain-HTTP page from planting it.
pub fn flash_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-signed_out"
    } else {
        "signed_out"
    }
}

/// A one-time notice for the next sign-in page, after a flow that ends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flash {
    SignedOut,
    PasswordReset,
    AccountDeleted,
    CheckInbox,
}

impl Flash {
    fn value(self) -> &'static str {
        match self {
            Flash::SignedOut => "1",
            Flash::PasswordReset => "reset",
            Flash::AccountDeleted => "deleted",
            Flash::CheckInbox => "inbox",
        }
    }

    /// The notice a cookie value names; anything else is no notice (the value is fixed text
    /// chosen here, never shown as sent).
    pub fn parse(value: &str) -> Option<Self> {
        [
            Flash::SignedOut,
            Flash::PasswordReset,
            Flash::AccountDeleted,
            Flash::CheckInbox,
        ]
        .into_iter()
        .find(|f| f.value() == value)
    }

    pub fn message(self) -> &'static str {
        match self {
            Flash::SignedOut => "You are signed out.",
            Flash::PasswordReset => "Your password was changed. Sign in with the new one.",
            Flash::AccountDeleted => "Your account was deleted.",
            Flash::CheckInbox => {
                "Check your inbox: we sent a link to confirm your email address. Sign in once it is confirmed."
            }
        }
    }
}

/// The flash for the next `GET /sign-in` (`Some`), set by a flow that answers with a bare
/// `Location: /sign-in`, or its removal (`None`) once shown. A minute is plenty to follow a
/// redirect; it carries no data.
pub fn flash_cookie(secure: bool, flash: Option<Flash>) -> Cookie<'static> {
    let mut c = Cookie::new(flash_cookie_name(secure), flash.map_or("", Flash::value));
    c.set_path("/sign-in");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(secure);
    c.set_max_age(CookieDuration::seconds(if flash.is_some() {
        60
    } else {
        0
    }));
    c
}

/// Middleware: a request carrying two session cookies is anonymous (see `Visitor::of`), and its
/// answer expires the host-only one, so that a cookie planted beside the real one (a sibling
/// host's `Domain=` cookie, or a host-only one shadowing the shared cookie) cannot pin the
/// browser to a session of someone else's choosing. The forward-auth answers set no cookie:
/// they go to a proxy, not to the browser.
pub async fn drop_shadowed_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let clear = req.app_data::<State>().and_then(|state| {
        let name = state.sessions.cookie_name();
        let headers = || {
            req.headers()
                .get_all(actix_web::http::header::COOKIE)
                .filter_map(|v| v.to_str().ok())
        };
        // The substring count is a cheap first look; parsing settles it.
        let duplicated = !req.path().starts_with("/auth/")
            && headers().map(|v| v.matches(name).count()).sum::<usize>() > 1
            && headers()
                .map(|v| crate::security::session::cookie_count(v, name))
                .sum::<usize>()
                > 1;
        duplicated.then(|| state.sessions.clear_host_only_session_cookie())
    });
    let mut res = next.call(req).await?;
    if let Some(cookie) = clear {
        let _ = res.response_mut().add_cookie(&cookie);
    }
    Ok(res)
}
