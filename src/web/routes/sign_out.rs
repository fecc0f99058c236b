//! `GET/POST /sign-out`: a confirmation page (a GET changes nothing) and the sign-out itself,
//! which leaves a one-time "you are signed out" flash cookie for the sign-in page.

use actix_web::HttpResponse;

use crate::state::State;
use crate::web::error::AppError;
use crate::web::extract::CsrfForm;
use crate::web::respond::{render, see_other, with_cookie};
use crate::web::session::{Flash, end_session, flash_cookie};
use crate::web::templates::SignOutPage;
use crate::web::visitor::Visitor;

pub async fn form(state: State, visitor: Visitor) -> Result<HttpResponse, AppError> {
    let (token, cookie) = match visitor.session_token(&state) {
        Some(t) => (t, None),
        None => visitor.anonymous_token(&state),
    };
    let page = SignOutPage {
        chrome: visitor.chrome("Sign out"),
        csrf_token: token,
    };
    Ok(with_cookie(render(&page)?, cookie))
}

pub async fn submit(state: State, posted: CsrfForm) -> Result<HttpResponse, AppError> {
    end_session(&state, &posted.visitor).await?;
    let mut resp = see_other("/sign-in");
    let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
    let _ = resp.add_cookie(&flash_cookie(state.sessions.secure, Some(Flash::SignedOut)));
    Ok(resp)
}
