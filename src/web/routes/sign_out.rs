//! `GET/POST /sign-out`: a confirmation page (a GET changes nothing) and the sign-out itself,
//! which leaves a one-time "you are signed out" flash cookie for the sign-in page.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};

use super::context::{self, Visitor, read_form, with_cookie};
use super::home::render;
use crate::accounts::Client;
use crate::audit::EventExt;
use crate::state::State;
use crate::web::error::AppError;
use crate::web::templates::{Chrome, SignOutPage};

pub async fn form(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(&req, &state).await?;
    let (token, cookie) = match visitor.session_token(&state) {
        Some(t) => (t, None),
        None => visitor.anonymous_token(&state),
    };
    let page = SignOutPage {
        chrome: Chrome::new("Sign out", visitor.user()),
        csrf_token: token,
    };
    Ok(with_cookie(render(&page)?, cookie))
}

pub async fn submit(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, AppError> {
    let form = read_form(&req, payload).await?;
    let visitor = Visitor::of(&req, &state).await?;
    if let Err(e) = visitor.check_csrf(&req, &state, &form) {
        return Ok(context::forbidden(&visitor, &state, e));
    }
    end_session(&state, &visitor, &context::client(&req, &state)).await?;
    let mut resp = super::see_other("/sign-in");
    let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
    let _ = resp.add_cookie(&signed_out_cookie(state.sessions.secure, true));
    Ok(resp)
}

/// The flash cookie's name. Its path is `/sign-in` (sent nowhere else), which the `__Host-`
/// prefix forbids; `__Secure-` still keeps a plain-HTTP page from planting it.
pub fn signed_out_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-signed_out"
    } else {
        "signed_out"
    }
}

/// "You are signed out" for the next sign-in page, once: set by `POST /sign-out` (which must
/// answer with a bare `Location: /sign-in`), shown and cleared (`set: false`) by
/// `GET /sign-in`. A minute is plenty to follow a redirect; it carries no data.
pub fn signed_out_cookie(secure: bool, set: bool) -> Cookie<'static> {
    let mut c = Cookie::new(signed_out_cookie_name(secure), if set { "1" } else { "" });
    c.set_path("/sign-in");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(secure);
    c.set_max_age(CookieDuration::seconds(if set { 60 } else { 0 }));
    c
}

/// Deletes the browser's session server-side (valid or not).
pub async fn end_session(
    state: &State,
    visitor: &Visitor,
    client: &Client,
) -> Result<(), AppError> {
    if let Some(hash) = visitor.presented {
        state.store.delete_session_by_hash(hash).await?;
    }
    if let Some(user) = visitor.user() {
        tracing::info!(event = "sign_out", username = %user.username, "signed out");
        state.audit.record(
            client
                .event("sign_out", "ok")
                .user(Some(&user.username), Some(user.id)),
        );
    }
    Ok(())
}
