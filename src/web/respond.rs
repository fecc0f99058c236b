//! Turning answers into HTTP, in one place: pages and redirects, error pages (HTML for the
//! site, JSON under `/api/`), the sign-in failure and lock-out wordings, and `Retry-After`
//! (docs/design.md, "Extractors and responses").

use std::time::Duration;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::security::redirect::{self, LocalPath};
use crate::state::{AppState, State};
use crate::web::error::{AppError, retry_after_secs};

/// One message for every failed sign-in, whatever the reason (pages and API).
pub const GENERIC_FAILURE: &str = "The username or password is incorrect.";

/// The sign-in lock-out message; `wait` says how long, e.g. "10 minutes" or "600 seconds".
pub fn locked_message(wait: &str) -> String {
    format!("Too many failed sign-ins for this username. Try again in {wait}.")
}

/// The change-password lock-out message.
pub fn password_locked_message(retry: Duration) -> String {
    format!(
        "Too many wrong passwords. Try again in {} seconds.",
        retry_after_secs(retry)
    )
}

/// Sets `Retry-After` (whole seconds, rounded up) on `resp`.
pub fn with_retry_after(mut resp: HttpResponse, retry: Duration) -> HttpResponse {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, retry_after_secs(retry).into());
    resp
}

/// "10 minutes", "1 minute", "45 seconds".
pub fn human_wait(secs: u64) -> String {
    match secs {
        0..=1 => "1 second".into(),
        2..=119 if !secs.is_multiple_of(60) || secs < 60 => format!("{secs} seconds"),
        _ => {
            let minutes = secs.div_ceil(60);
            if minutes == 1 {
                "1 minute".into()
            } else {
                format!("{minutes} minutes")
            }
        }
    }
}

/// Renders a page as `200 text/html`.
pub fn render(page: &impl Template) -> Result<HttpResponse, AppError> {
    render_status(StatusCode::OK, page)
}

pub fn render_status(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page
        .render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}

/// 303 See Other to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// 303 to the sign-in page with a signed `next` back to `path`.
pub fn to_sign_in(state: &AppState, path: &str) -> HttpResponse {
    let next =
        LocalPath::parse(path).unwrap_or_else(|| LocalPath::parse("/welcome").expect("literal"));
    see_other(&format!(
        "/sign-in?{}",
        redirect::sign_in_query(&state.key, &next)
    ))
}

/// Adds `cookie` to `resp` when present.
pub fn with_cookie(mut resp: HttpResponse, cookie: Option<Cookie<'static>>) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

/// Whether the request is the JSON API's (answers in JSON) rather than the site's (HTML).
pub fn is_api(req: &HttpRequest) -> bool {
    req.path().starts_with("/api/")
}

/// An error as the request's kind of client reads it: JSON under `/api/`, else the HTML page.
pub fn error(req: &HttpRequest, e: &AppError) -> HttpResponse {
    if is_api(req) {
        e.json()
    } else {
        let sign_up = req.app_data::<State>().is_none_or(|s| s.sign_up_open);
        e.page(sign_up)
    }
}

/// Middleware: an [`AppError`] a handler returned was rendered without the state (as for an
/// open site); where sign-up is closed, render its page again without the sign-up link.
pub async fn error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let sign_up = req.app_data::<State>().is_none_or(|s| s.sign_up_open);
    let res = next.call(req).await?;
    let page = if sign_up {
        None
    } else {
        res.response()
            .error()
            .and_then(|e| e.as_error::<AppError>())
            .map(|e| e.page_body(false))
    };
    Ok(match page {
        None => res.map_into_left_body(),
        Some(body) => res.map_body(|_, _| EitherBody::right(BoxBody::new(body))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally() {
        assert_eq!(human_wait(600), "10 minutes");
        assert_eq!(human_wait(2), "2 seconds");
        assert_eq!(human_wait(60), "1 minute");
        assert_eq!(human_wait(90), "90 seconds");
        assert_eq!(human_wait(1), "1 second");
        assert_eq!(human_wait(601), "11 minutes");
    }

    #[test]
    fn lock_messages_keep_their_wording() {
        assert_eq!(
            locked_message("10 minutes"),
            "Too many failed sign-ins for this username. Try again in 10 minutes."
        );
        assert_eq!(
            password_locked_message(Duration::from_millis(1_500)),
            "Too many wrong passwords. Try again in 2 seconds."
        );
        let resp = with_retry_after(HttpResponse::Ok().finish(), Duration::from_millis(1_500));
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }
}
