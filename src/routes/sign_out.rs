//! `GET/POST /sign-out`: a confirmation page (a GET changes nothing) and the sign-out itself.

use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};

use super::context::{self, Visitor, read_form, with_cookie};
use super::home::render;
use crate::accounts::Client;
use crate::audit::EventExt;
use crate::error::AppError;
use crate::server::State;
use crate::templates::{Chrome, SignOutPage};

pub async fn form(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(&req, &state)?;
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
    let visitor = Visitor::of(&req, &state)?;
    if let Err(e) = visitor.check_csrf(&req, &state, &form) {
        return Ok(context::forbidden(&visitor, &state, e));
    }
    end_session(&state, &visitor, &context::client(&req, &state)).await?;
    let mut resp = super::see_other("/sign-in");
    let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
    Ok(resp)
}

/// Deletes the browser's session server-side (valid or not).
pub async fn end_session(
    state: &State,
    visitor: &Visitor,
    client: &Client,
) -> Result<(), AppError> {
    if let Some(hash) = visitor.presented {
        state
            .store
            .blocking(move |s| s.delete_session_by_hash(&hash))
            .await?;
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
