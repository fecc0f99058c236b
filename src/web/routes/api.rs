//! The JSON API (SPEC §7), for scripts and curl. Its CSRF defence is the required
//! `Content-Type: application/json` (a cross-site form cannot send it without a preflight),
//! plus the same `Origin` check as the pages.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::context::{self, Visitor};
use crate::accounts::{self, PasswordInput, SignInError, SignUpError, SignUpInput};
use crate::clock::format_ms;
use crate::state::State;
use crate::store::User;
use crate::web::error::{ApiError, AppError, retry_after_secs};
use crate::web::forms;

/// A JSON body of `/api/users` or `/api/session`; unknown fields are ignored.
#[derive(Deserialize, Debug)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_digest: Option<String>,
    pub email: Option<String>,
    pub full_name: Option<String>,
}

impl Credentials {
    /// The password as given: plain, digest, or missing; both at once is a 400.
    pub fn password(&self) -> Result<PasswordInput<'_>, AppError> {
        match (self.password.as_deref(), self.password_digest.as_deref()) {
            (Some(_), Some(_)) => Err(AppError::bad_request(
                "Send either password or password_digest, not both.",
            )),
            (None, Some(d)) => Ok(PasswordInput::Digest(d)),
            (Some(p), None) => Ok(PasswordInput::Plain {
                password: p,
                repeat: None,
            }),
            (None, None) => Ok(PasswordInput::Missing),
        }
    }
}

/// 413 → 415 → 400 → 403, then the parsed body.
async fn read_json(req: &HttpRequest, payload: Payload) -> Result<Credentials, AppError> {
    let body = forms::read_body(req, payload).await?;
    forms::require_media_type(
        req,
        "application/json",
        "Send the body as application/json.",
    )?;
    let creds = parse_body(&body)?;
    context::check_origin(req, req.app_data::<State>().expect("state"))?;
    Ok(creds)
}

/// Parses a JSON body strictly: an object, each known field a string or null, no key twice.
pub fn parse_body(body: &[u8]) -> Result<Credentials, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("The JSON body is malformed: {e}.")))
}

fn user_json(u: &User) -> serde_json::Value {
    json!({
        "username": u.username,
        "email": u.email,
        "full_name": u.full_name,
        "created_at": format_ms(u.created_ms),
    })
}

/// `POST /api/users`: 201 with the user; no session is created.
pub async fn create_user(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, ApiError> {
    super::sign_up::open(&state)?;
    let body = read_json(&req, payload).await?;
    let input = SignUpInput {
        username: body.username.as_deref().unwrap_or(""),
        email: body.email.as_deref().unwrap_or(""),
        full_name: body.full_name.as_deref().unwrap_or(""),
        password: body.password()?,
    };
    let client = context::client(&req, &state);
    match accounts::sign_up(&state, input, &client, None).await {
        Ok((user, _)) => Ok(HttpResponse::Created().json(user_json(&user))),
        Err(SignUpError::Invalid(errors)) => {
            let mut fields = serde_json::Map::new();
            for (field, message) in errors.0 {
                fields.entry(field).or_insert(json!(message));
            }
            Ok(HttpResponse::BadRequest()
                .json(json!({ "error": "Some fields are invalid.", "fields": fields })))
        }
        Err(SignUpError::Taken { field, message }) => {
            Ok(HttpResponse::Conflict().json(json!({ "error": message, "field": field })))
        }
        Err(SignUpError::App(e)) => Err(e.into()),
    }
}

/// `POST /api/session`: 204 with a session cookie.
pub async fn create_session(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&req, payload).await?;
    let visitor = Visitor::of(&req, &state).await?;
    let client = context::client(&req, &state);
    let typed = body.username.as_deref().unwrap_or("");
    match accounts::sign_in(&state, typed, body.password()?, &client, visitor.presented).await {
        Ok(signed_in) => Ok(context::signed_in(
            HttpResponse::NoContent().finish(),
            &state,
            signed_in,
        )),
        Err(SignInError::Failed) => {
            Ok(HttpResponse::Unauthorized()
                .json(json!({ "error": super::sign_in::GENERIC_FAILURE })))
        }
        Err(SignInError::Locked(retry)) => {
            let secs = retry_after_secs(retry);
            Ok(HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
                .insert_header((header::RETRY_AFTER, secs.to_string()))
                .json(json!({
                    "error": format!("Too many failed sign-ins for this username. Try again in {secs} seconds."),
                    "retry_after": secs,
                })))
        }
        Err(SignInError::BadDigest(msg)) => Ok(HttpResponse::BadRequest()
            .json(json!({ "error": msg, "fields": { "password_digest": msg } }))),
        Err(SignInError::App(e)) => Err(e.into()),
    }
}

/// `GET /api/me`.
pub async fn me(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    let visitor = Visitor::of(&req, &state).await?;
    match visitor.user() {
        Some(u) => Ok(HttpResponse::Ok().json(user_json(u))),
        None => Err(AppError::Unauthorized.into()),
    }
}

/// `DELETE /api/session`: always 204.
pub async fn delete_session(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    context::check_origin(&req, &state)?;
    let visitor = Visitor::of(&req, &state).await?;
    super::sign_out::end_session(&state, &visitor, &context::client(&req, &state)).await?;
    let mut resp = HttpResponse::NoContent().finish();
    let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
    Ok(resp)
}
