//! The JSON API (docs/api.md, docs/behaviour.md §7), for scripts and curl. Its CSRF defence is the
//! required
//! `Content-Type: application/json` (a cross-site form cannot send it without a preflight),
//! plus the same `Origin` check as the pages.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::{PasswordInput, SignUpInput};
use crate::clock::format_ms;
use crate::state::State;
use crate::store::User;
use crate::web::error::{ApiError, AppError, retry_after_secs};
use crate::web::extract::{Json, Peer, SameOrigin, SignUpOpen, SignedIn, Then, parse_json};
use crate::web::messages::{self, CodeReply, SignInReply, SignUpReply};
use crate::web::respond::{GENERIC_FAILURE, locked_message, with_retry_after};
use crate::web::session;
use crate::web::visitor::Visitor;

/// A JSON body of `/api/users` or `/api/session`; unknown fields are ignored.
#[derive(Deserialize, Debug)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_digest: Option<String>,
    pub email: Option<String>,
    pub full_name: Option<String>,
    /// The second step's code for a user with authenticator codes on (§13.1).
    pub code: Option<String>,
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

/// Parses a JSON body strictly: an object, each known field a string or null, no key twice.
pub fn parse_body(body: &[u8]) -> Result<Credentials, AppError> {
    parse_json(body)
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
    _: SignUpOpen,
    state: State,
    Then(Json(body), Peer(client)): Then<Json<Credentials>, Peer>,
) -> Result<HttpResponse, ApiError> {
    let input = SignUpInput {
        username: body.username.as_deref().unwrap_or(""),
        email: body.email.as_deref().unwrap_or(""),
        full_name: body.full_name.as_deref().unwrap_or(""),
        password: body.password()?,
    };
    match state
        .accounts
        .sign_up(input, &client, None)
        .await
        .map_err(messages::sign_up)
    {
        Ok(created) => Ok(HttpResponse::Created().json(user_json(&created.user))),
        Err(Err(e)) => Err(e.into()),
        Err(Ok(SignUpReply::Invalid(errors))) => {
            let mut fields = serde_json::Map::new();
            for (field, message) in errors {
                fields.entry(field).or_insert(json!(message));
            }
            Ok(HttpResponse::BadRequest()
                .json(json!({ "error": "Some fields are invalid.", "fields": fields })))
        }
        Err(Ok(SignUpReply::Taken { field, message })) => {
            Ok(HttpResponse::Conflict().json(json!({ "error": message, "field": field })))
        }
    }
}

/// `POST /api/session`: 204 with a session cookie.
pub async fn create_session(
    state: State,
    Then(Json(body), visitor): Then<Json<Credentials>, Visitor>,
) -> Result<HttpResponse, ApiError> {
    let client = &visitor.client;
    let typed = body.username.as_deref().unwrap_or("");
    let outcome = state
        .accounts
        .sign_in(typed, body.password()?, client, visitor.presented)
        .await;
    match outcome.map_err(messages::sign_in) {
        Ok(signed_in) => Ok(session::signed_in(
            HttpResponse::NoContent().finish(),
            &state,
            signed_in,
        )),
        Err(Err(e)) => Err(e.into()),
        Err(Ok(SignInReply::Failed)) => {
            Ok(HttpResponse::Unauthorized().json(json!({ "error": GENERIC_FAILURE })))
        }
        Err(Ok(SignInReply::Locked(retry))) => {
            let secs = retry_after_secs(retry);
            let resp = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS).json(json!({
                "error": locked_message(&format!("{secs} seconds")),
                "retry_after": secs,
            }));
            Ok(with_retry_after(resp, retry))
        }
        Err(Ok(SignInReply::BadDigest(msg))) => Ok(HttpResponse::BadRequest()
            .json(json!({ "error": msg, "fields": { "password_digest": msg } }))),
        Err(Ok(SignInReply::CodeRequired(passed))) => {
            let Some(code) = body.code.as_deref().filter(|c| !c.trim().is_empty()) else {
                return Ok(HttpResponse::Unauthorized().json(json!({ "error": "code_required" })));
            };
            let outcome = state
                .accounts
                .sign_in_with_code(passed, code, client, visitor.presented)
                .await;
            match outcome.map_err(messages::code) {
                Ok(signed_in) => Ok(session::signed_in(
                    HttpResponse::NoContent().finish(),
                    &state,
                    signed_in,
                )),
                Err(Err(e)) => Err(e.into()),
                Err(Ok(CodeReply::Locked(retry))) => {
                    let secs = retry_after_secs(retry);
                    let resp = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS).json(json!({
                        "error": locked_message(&format!("{secs} seconds")),
                        "retry_after": secs,
                    }));
                    Ok(with_retry_after(resp, retry))
                }
                Err(Ok(CodeReply::Missing)) => {
                    Ok(HttpResponse::Unauthorized().json(json!({ "error": "code_required" })))
                }
                Err(Ok(CodeReply::Wrong | CodeReply::Expired)) => {
                    Ok(HttpResponse::Unauthorized().json(json!({ "error": "code_invalid" })))
                }
            }
        }
        Err(Ok(SignInReply::Unverified { .. })) => Ok(HttpResponse::Forbidden().json(json!({
            "error": "Confirm your email address first: follow the link we mailed to it, or sign in on the site to have it sent again.",
        }))),
    }
}

/// `GET /api/me`: anonymous is a 401 ([`SignedIn`]).
pub async fn me(signed_in: SignedIn) -> HttpResponse {
    HttpResponse::Ok().json(user_json(&signed_in.current().user))
}

/// `DELETE /api/session`: always 204.
pub async fn delete_session(
    _: SameOrigin,
    state: State,
    visitor: Visitor,
) -> Result<HttpResponse, ApiError> {
    session::end_session(&state, &visitor).await?;
    let mut resp = HttpResponse::NoContent().finish();
    let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
    Ok(resp)
}

/// The body of `POST /api/password-reset`.
#[derive(Deserialize, Debug)]
pub struct ResetRequest {
    pub login: Option<String>,
}

/// `POST /api/password-reset` `{login}`: 202 whatever the login (if an account matches and has
/// a verified email, a link is mailed), 400 without a login, 429 for a throttled address. On a
/// site without mail it is still a 202 (the SPEC's "always"), whose message says so.
pub async fn request_reset(
    state: State,
    Then(Json(body), Peer(client)): Then<Json<ResetRequest>, Peer>,
) -> Result<HttpResponse, ApiError> {
    let login = body.login.as_deref().unwrap_or("").trim();
    if login.is_empty() && state.mail.is_some() {
        let msg = "Enter your username or email address.";
        return Ok(HttpResponse::BadRequest()
            .json(json!({ "error": "Some fields are invalid.", "fields": { "login": msg } })));
    }
    match state.accounts.request_reset(login, &client).await? {
        crate::accounts::ResetAsked::Accepted => Ok(HttpResponse::Accepted().json(json!({
            "message": "If an account matches and has a verified email address, a link to \
                        choose a new password is on its way.",
        }))),
        crate::accounts::ResetAsked::MailOff => Ok(HttpResponse::Accepted().json(json!({
            "message": "This site does not send email: nothing will arrive. Ask the site's \
                        operator for a reset link.",
            "mail": false,
        }))),
    }
}

/// `POST /api/password-reset/{token}` `{password | password_digest}`: 204 once the password is
/// set (every session ended; no session is created), 400 for the field rules, 410 for a link
/// that opens nothing.
pub async fn reset_password(
    state: State,
    token: actix_web::web::Path<String>,
    Then(Json(body), Peer(client)): Then<Json<Credentials>, Peer>,
) -> Result<HttpResponse, ApiError> {
    let gone = || {
        HttpResponse::Gone()
            .json(json!({ "error": "This reset link is no longer valid. Ask for a new one." }))
    };
    let Some(token) = crate::security::token::LinkToken::parse(&token) else {
        return Ok(gone());
    };
    match state
        .accounts
        .reset_with_link(&token, body.password()?, &client)
        .await
    {
        Ok(_) => Ok(HttpResponse::NoContent().finish()),
        Err(crate::accounts::LinkResetError::Gone) => Ok(gone()),
        Err(crate::accounts::LinkResetError::Invalid(errors)) => {
            let mut fields = serde_json::Map::new();
            for (field, message) in messages::fields(errors) {
                // The API's field is `password` (or `password_digest`), not the form's.
                let field = field.replace("new_", "").replace("_repeat", "");
                fields.entry(field).or_insert(json!(message));
            }
            Ok(HttpResponse::BadRequest()
                .json(json!({ "error": "Some fields are invalid.", "fields": fields })))
        }
        Err(crate::accounts::LinkResetError::Refused(r)) => Err(r.into()),
        Err(crate::accounts::LinkResetError::Kdf(e)) => Err(e.into()),
        Err(crate::accounts::LinkResetError::Store(e)) => Err(e.into()),
    }
}

/// `DELETE /api/me` `{password | password_digest}`: deletes the caller's own account (§4's lock
/// applies to the password): 204 and the cookie expired, 401 for a wrong password or no
/// session, 429 when locked.
pub async fn delete_me(
    state: State,
    Then(Json(body), signed_in): Then<Json<Credentials>, SignedIn>,
) -> Result<HttpResponse, ApiError> {
    let current = signed_in.current();
    let outcome = state
        .accounts
        .delete_account(&current.user, body.password()?, &signed_in.visitor().client)
        .await;
    match outcome.map_err(messages::confirm) {
        Ok(()) => {
            let mut resp = HttpResponse::NoContent().finish();
            let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
            Ok(resp)
        }
        Err(Err(e)) => Err(e.into()),
        Err(Ok(reply)) => Ok(password_refused(reply)),
    }
}

/// `PATCH /api/me` `{full_name?, email?, password | password_digest}` (the password is needed
/// with `email`): 200 with the user (a new email is pending until confirmed), 400, 401, 409,
/// 429.
pub async fn patch_me(
    state: State,
    Then(Json(body), signed_in): Then<Json<Credentials>, SignedIn>,
) -> Result<HttpResponse, ApiError> {
    let current = signed_in.current();
    let outcome = state
        .accounts
        .update_profile(
            &current.user,
            crate::accounts::ProfileInput {
                full_name: body.full_name.as_deref(),
                email: body.email.as_deref(),
                password: body.password()?,
            },
            &signed_in.visitor().client,
        )
        .await;
    let changed = match outcome {
        Ok(changed) => changed,
        Err(crate::accounts::ProfileError::Invalid(errors)) => {
            let mut fields = serde_json::Map::new();
            for (field, message) in messages::fields(errors) {
                fields.entry(field).or_insert(json!(message));
            }
            return Ok(HttpResponse::BadRequest()
                .json(json!({ "error": "Some fields are invalid.", "fields": fields })));
        }
        Err(crate::accounts::ProfileError::EmailTaken) => {
            return Ok(HttpResponse::Conflict().json(
                json!({ "error": "An account with this email already exists.", "field": "email" }),
            ));
        }
        Err(crate::accounts::ProfileError::Store(e)) => return Err(e.into()),
        Err(crate::accounts::ProfileError::Confirm(e)) => {
            return Ok(password_refused(messages::confirm(e)?));
        }
    };
    let details = state
        .store
        .user_details_by_id(current.user.id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(json!({
        "username": details.username,
        "email": details.email,
        "email_verified": details.email_verified,
        "pending_email": details.pending_email,
        "full_name": details.full_name,
        "created_at": format_ms(details.created_ms),
        "email_pending": changed.email_pending,
    })))
}

/// A refused current password (`DELETE` or `PATCH /api/me`): 401, 429 with `Retry-After`, or
/// 400 with the field (named as the body names it: `password`, `password_digest`).
fn password_refused(reply: messages::ChangeReply) -> HttpResponse {
    match reply {
        messages::ChangeReply::WrongPassword => {
            HttpResponse::Unauthorized().json(json!({ "error": messages::WRONG_CURRENT_PASSWORD }))
        }
        messages::ChangeReply::Locked(retry) => {
            let secs = retry_after_secs(retry);
            let resp = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS).json(json!({
                "error": locked_message(&format!("{secs} seconds")),
                "retry_after": secs,
            }));
            with_retry_after(resp, retry)
        }
        messages::ChangeReply::Invalid(errors) => {
            let mut fields = serde_json::Map::new();
            for (field, message) in errors {
                let field = field.replace("current_", "");
                fields.entry(field).or_insert(json!(message));
            }
            HttpResponse::BadRequest()
                .json(json!({ "error": "Some fields are invalid.", "fields": fields }))
        }
    }
}
