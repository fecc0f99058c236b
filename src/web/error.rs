//! Errors that end a request, mapped to responses in one place: an HTML page for the site and
//! `{"error": …}` for the JSON API. A client's mistake is never a 500, and a 500 shows no
//! internals (they go to the log).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use askama::Template;

use crate::security::password::KdfError;
use crate::store::StoreError;
use crate::web::templates::{Chrome, ErrorPage};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("This page does not exist.")]
    NotFound,
    #[error("This address does not accept {method} requests.")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("The request body is larger than 64 KiB.")]
    PayloadTooLarge,
    #[error("The request took too long to arrive.")]
    RequestTimeout,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("This site does not take sign-ups: accounts are created by the administrator.")]
    SignUpClosed,
    #[error("{message}")]
    TooManyRequests {
        retry_after: Duration,
        message: String,
    },
    #[error("{message}")]
    Unavailable {
        retry_after: Duration,
        message: &'static str,
    },
    #[error("Sign in to continue.")]
    Unauthorized,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// What the visitor reads: never internals.
    fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "Something went wrong on our side. Please try again.".into(),
            other => other.to_string(),
        }
    }

    fn heading(&self) -> &'static str {
        match self {
            AppError::NotFound => "Page not found",
            AppError::MethodNotAllowed { .. } => "Method not allowed",
            AppError::PayloadTooLarge => "Request too large",
            AppError::RequestTimeout => "Request too slow",
            AppError::UnsupportedMediaType(_) => "Unsupported form encoding",
            AppError::BadRequest(_) => "Bad request",
            AppError::Forbidden(_) => "Request refused",
            AppError::SignUpClosed => "Sign-up closed",
            AppError::TooManyRequests { .. } => "Too many attempts",
            AppError::Unavailable { .. } => "Busy, please retry",
            AppError::Unauthorized => "Sign in required",
            AppError::Conflict(_) => "Changed elsewhere",
            AppError::Internal(_) => "Server error",
        }
    }

    fn builder(&self) -> HttpResponseBuilder {
        let mut b = HttpResponse::build(self.status_code());
        match self {
            AppError::MethodNotAllowed { allow, .. } => {
                b.insert_header((header::ALLOW, *allow));
            }
            AppError::TooManyRequests { retry_after, .. }
            | AppError::Unavailable { retry_after, .. } => {
                b.insert_header((
                    header::RETRY_AFTER,
                    retry_after_secs(*retry_after).to_string(),
                ));
            }
            AppError::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ => {}
        }
        b
    }

    /// The HTML error page; `sign_up` is the site's `--sign-up` setting, for the header link.
    pub fn page(&self, sign_up: bool) -> HttpResponse {
        let body = self.page_body(sign_up);
        self.builder().content_type(ContentType::html()).body(body)
    }

    /// The error page's HTML alone (no logging, no headers).
    pub(crate) fn page_body(&self, sign_up: bool) -> String {
        let page = ErrorPage {
            chrome: Chrome::new(self.heading(), None, sign_up),
            heading: self.heading(),
            message: self.public_message(),
            link_href: "/",
            link_text: "Go to the start page",
        };
        page.render().unwrap_or_else(|_| self.public_message())
    }

    /// The JSON error body for the API.
    pub fn json(&self) -> HttpResponse {
        self.builder()
            .json(serde_json::json!({ "error": self.public_message() }))
    }
}

/// Whole seconds, rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.is_zero()))
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) | AppError::SignUpClosed => StatusCode::FORBIDDEN,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Rendered as for an open site: without the request there is no state to ask.
    /// The `error_pages` middleware (`web::respond`) renders it again where sign-up is closed.
    fn error_response(&self) -> HttpResponse {
        self.page(true)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        // Every store error is a fault: a taken name or email is an outcome, not an error.
        crate::metrics::db_error();
        match e {
            StoreError::Busy => AppError::Unavailable {
                retry_after: Duration::from_secs(1),
                message: "The database is busy. Please try again in a moment.",
            },
            StoreError::Unavailable(why) => {
                tracing::warn!("database unavailable: {why}");
                AppError::Unavailable {
                    retry_after: Duration::from_secs(2),
                    message: "The database is unavailable. Please try again in a moment.",
                }
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<KdfError> for AppError {
    fn from(e: KdfError) -> Self {
        match e {
            KdfError::QueueFull => AppError::Unavailable {
                retry_after: Duration::from_secs(2),
                message: "Too many sign-ins are being processed right now. Please try again in a moment.",
            },
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// The same error rendered as JSON, for `/api/…` handlers.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.0.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_secs(600)), 600);
        assert_eq!(retry_after_secs(Duration::from_millis(1_500)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn internal_details_stay_private() {
        let e = AppError::Internal("secret sqlite path /var/db".into());
        assert!(!e.public_message().contains("sqlite"));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn busy_and_full_queue_are_503() {
        assert_eq!(
            AppError::from(StoreError::Busy).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            AppError::from(KdfError::QueueFull).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
