//! `/`, `/welcome` (the protected greeting) and `/healthz`.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::context::{Visitor, to_sign_in};
use crate::state::State;
use crate::web::error::AppError;
use crate::web::templates::{Chrome, WelcomePage};

pub async fn index(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(&req, &state).await?;
    Ok(super::see_other(if visitor.current.is_some() {
        "/welcome"
    } else {
        "/sign-in"
    }))
}

pub async fn welcome(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(&req, &state).await?;
    let Some(user) = visitor.user() else {
        return Ok(to_sign_in(&state, "/welcome"));
    };
    let page = WelcomePage {
        chrome: Chrome::new("Welcome", Some(user)),
        name: user
            .full_name
            .clone()
            .unwrap_or_else(|| user.username.clone()),
    };
    render(&page)
}

pub async fn healthz(state: State) -> HttpResponse {
    // The store's own fixed pool: `web::block`'s pool grows to 512 threads under a flood.
    // A full queue (`Busy`) answers 503 like a failed check.
    let healthy = state.store.healthy().await;
    if healthy {
        HttpResponse::Ok()
            .content_type(ContentType::plaintext())
            .body("ok")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type(ContentType::plaintext())
            .body("database unavailable")
    }
}

/// Renders a page as `200 text/html`.
pub fn render(page: &impl Template) -> Result<HttpResponse, AppError> {
    render_status(actix_web::http::StatusCode::OK, page)
}

pub fn render_status(
    status: actix_web::http::StatusCode,
    page: &impl Template,
) -> Result<HttpResponse, AppError> {
    let body = page
        .render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}
