//! Passkeys on the web (docs/behaviour.md §13.2): the JSON endpoints the page's script drives
//! for the two WebAuthn ceremonies, and `/account`'s rename and remove forms.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /sign-in/passkey/options` | `{csrf_token}` | 200 `{ceremony, publicKey}` |
//! | `POST /sign-in/passkey` | `{csrf_token, ceremony, credential, next?, rd?, sig?}` | 200 `{redirect}` + session |
//! | `POST /account/passkeys/options` | `{csrf_token, name}` (signed in) | 200 `{ceremony, publicKey}` |
//! | `POST /account/passkeys` | `{csrf_token, ceremony, credential}` (signed in) | 201 `{id, name}` |
//! | `POST /account/passkeys/{id}/rename` | form `csrf_token, name` | 303 `/account` |
//! | `POST /account/passkeys/{id}/remove` | form `csrf_token` | 303 `/account` |
//!
//! The JSON endpoints take `application/json` (415 otherwise), check `Origin` and the page's
//! CSRF token (403), and answer errors as `{error}` JSON with the status saying why.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::accounts::{CeremonyStarted, PasskeyError};
use crate::domain::PasskeyName;
use crate::security::passkey::RelyingParty;
use crate::security::return_to::ReturnTo;
use crate::state::{AppState, State};
use crate::web::error::{ApiError, AppError};
use crate::web::extract::SignedInForm;
use crate::web::forms;
use crate::web::respond::{see_other, with_retry_after};
use crate::web::visitor::Visitor;

/// A JSON body from one of the site's own pages: 413 → 415 → 400 → 403 (`Origin`, then the
/// `csrf_token` field against the browser's bindings), errors answered as JSON.
pub struct PageJson<T> {
    pub visitor: Visitor,
    pub body: T,
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf_token: String,
}

fn json_error(e: AppError) -> actix_web::Error {
    let resp = ApiError(e).0.json();
    actix_web::error::InternalError::from_response("refused", resp).into()
}

impl<T: DeserializeOwned + 'static> FromRequest for PageJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let state = req
                .app_data::<State>()
                .cloned()
                .ok_or_else(|| json_error(AppError::Internal("no state".into())))?;
            let raw = forms::read_body(&req, payload).await.map_err(json_error)?;
            forms::require_media_type(
                &req,
                "application/json",
                "Send the body as application/json.",
            )
            .map_err(json_error)?;
            let token: Token = crate::web::extract::parse_json(&raw).map_err(json_error)?;
            let body: T = crate::web::extract::parse_json(&raw).map_err(json_error)?;
            let visitor = Visitor::of(&req, &state).await.map_err(json_error)?;
            visitor
                .check_csrf_token(&req, &state, &token.csrf_token)
                .map_err(json_error)?;
            Ok(PageJson { visitor, body })
        })
    }
}

/// The site's relying party as this request reached it (see [`RelyingParty::for_site`]).
pub fn relying_party(req: &HttpRequest, state: &AppState) -> Option<RelyingParty> {
    let origin =
        crate::web::request::site_origin(req, state.public_url.as_deref(), &state.trusted_proxies);
    RelyingParty::for_site(state.public_url.as_deref(), &origin)
}

fn json(status: StatusCode, value: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(value)
}

/// A flow's refusal as JSON with its status; storage faults as the site's 503/500.
fn refusal(e: PasskeyError) -> Result<HttpResponse, ApiError> {
    let (status, message) = match e {
        PasskeyError::Unavailable => (
            StatusCode::NOT_FOUND,
            "Passkeys work on this site's https address (or on localhost) only.",
        ),
        PasskeyError::Busy => {
            let resp = json(
                StatusCode::TOO_MANY_REQUESTS,
                serde_json::json!({"error": "Too many passkey requests from your network are in progress. Try again in a few minutes."}),
            );
            return Ok(with_retry_after(resp, std::time::Duration::from_secs(60)));
        }
        PasskeyError::Expired => (
            StatusCode::GONE,
            "This passkey request expired or was already used. Please try again.",
        ),
        PasskeyError::Malformed(_) => (
            StatusCode::BAD_REQUEST,
            "The browser's answer was not a passkey credential.",
        ),
        PasskeyError::Rejected => (StatusCode::UNAUTHORIZED, "That passkey was not accepted."),
        PasskeyError::Duplicate => (StatusCode::CONFLICT, "This passkey is registered already."),
        PasskeyError::TooMany => (
            StatusCode::CONFLICT,
            "You have the most passkeys allowed: remove one first.",
        ),
        PasskeyError::NotFound => (StatusCode::NOT_FOUND, "No such passkey."),
        PasskeyError::EmailUnverified { .. } => (
            StatusCode::FORBIDDEN,
            "Confirm your email address before signing in: sign in with your password to get a new link.",
        ),
        PasskeyError::Internal(m) => return Err(AppError::Internal(m).into()),
        PasskeyError::Store(e) => return Err(e.into()),
    };
    Ok(json(status, serde_json::json!({ "error": message })))
}

fn started(s: CeremonyStarted) -> HttpResponse {
    json(
        StatusCode::OK,
        serde_json::json!({"ceremony": s.ceremony.to_wire(), "publicKey": s.public_key}),
    )
}

#[derive(Deserialize)]
pub struct Start {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
pub struct Finish {
    ceremony: String,
    credential: serde_json::Value,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    rd: Option<String>,
    #[serde(default)]
    sig: Option<String>,
}

/// `POST /sign-in/passkey/options`.
pub async fn sign_in_options(
    req: HttpRequest,
    state: State,
    posted: PageJson<Start>,
) -> Result<HttpResponse, ApiError> {
    let Some(rp) = relying_party(&req, &state) else {
        return refusal(PasskeyError::Unavailable);
    };
    match state
        .accounts
        .start_passkey_sign_in(&rp, &posted.visitor.client)
        .await
    {
        Ok(s) => Ok(started(s)),
        Err(e) => refusal(e),
    }
}

/// `POST /sign-in/passkey`: a session as a password sign-in opens one, and where to go.
pub async fn sign_in(
    req: HttpRequest,
    state: State,
    posted: PageJson<Finish>,
) -> Result<HttpResponse, ApiError> {
    let Some(rp) = relying_party(&req, &state) else {
        return refusal(PasskeyError::Unavailable);
    };
    let PageJson { visitor, body } = posted;
    let non_empty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let (next, rd, sig) = (
        non_empty(&body.next),
        non_empty(&body.rd),
        non_empty(&body.sig),
    );
    let to = ReturnTo::verify(
        &state.key,
        &state.forward,
        next.as_deref(),
        rd.as_deref(),
        sig.as_deref(),
    );
    let outcome = state
        .accounts
        .finish_passkey_sign_in(
            &rp,
            &body.ceremony,
            body.credential,
            &visitor.client,
            visitor.presented,
        )
        .await;
    match outcome {
        Ok(signed_in) => {
            let resp = json(
                StatusCode::OK,
                serde_json::json!({ "redirect": to.location() }),
            );
            Ok(crate::web::session::signed_in(resp, &state, signed_in))
        }
        Err(e) => refusal(e),
    }
}

/// `POST /account/passkeys/options`: a registration for the signed-in user.
pub async fn register_options(
    req: HttpRequest,
    state: State,
    posted: PageJson<Start>,
) -> Result<HttpResponse, ApiError> {
    let Some(current) = posted.visitor.current.as_ref() else {
        return Err(AppError::Unauthorized.into());
    };
    let name = match PasskeyName::parse(posted.body.name.as_deref().unwrap_or("")) {
        Ok(n) => n,
        Err(msg) => {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": msg, "fields": {"name": msg}}),
            ));
        }
    };
    let Some(rp) = relying_party(&req, &state) else {
        return refusal(PasskeyError::Unavailable);
    };
    match state
        .accounts
        .start_passkey_registration(&rp, &current.user, name, &posted.visitor.client)
        .await
    {
        Ok(s) => Ok(started(s)),
        Err(e) => refusal(e),
    }
}

/// `POST /account/passkeys`: stores the passkey the browser made.
pub async fn register(
    req: HttpRequest,
    state: State,
    posted: PageJson<Finish>,
) -> Result<HttpResponse, ApiError> {
    let PageJson { visitor, body } = posted;
    let Some(current) = visitor.current.as_ref() else {
        return Err(AppError::Unauthorized.into());
    };
    let Some(rp) = relying_party(&req, &state) else {
        return refusal(PasskeyError::Unavailable);
    };
    let outcome = state
        .accounts
        .finish_passkey_registration(
            &rp,
            &current.user,
            &body.ceremony,
            body.credential,
            &visitor.client,
        )
        .await;
    match outcome {
        Ok(id) => Ok(json(StatusCode::CREATED, serde_json::json!({ "id": id }))),
        Err(e) => refusal(e),
    }
}

fn passkey_id(path: &str) -> Result<i64, AppError> {
    path.parse::<i64>().map_err(|_| AppError::NotFound)
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn rename(
    path: web::Path<String>,
    state: State,
    posted: SignedInForm,
) -> Result<HttpResponse, AppError> {
    let id = passkey_id(&path)?;
    let user = &posted.user.current().user;
    let name = PasskeyName::parse(posted.form.text("name"))
        .map_err(|msg| AppError::bad_request(format!("The new name was not saved: {msg}")))?;
    match state.accounts.rename_passkey(user.id, id, name).await {
        Ok(()) => Ok(see_other("/account?passkey=renamed")),
        Err(PasskeyError::NotFound) => Err(AppError::NotFound),
        Err(PasskeyError::Store(e)) => Err(e.into()),
        Err(other) => Err(AppError::Internal(other.to_string())),
    }
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn remove(
    path: web::Path<String>,
    state: State,
    posted: SignedInForm,
) -> Result<HttpResponse, AppError> {
    let id = passkey_id(&path)?;
    let user = &posted.user.current().user;
    let client = &posted.user.visitor().client;
    match state.accounts.remove_passkey(user, id, client).await {
        Ok(()) => Ok(see_other("/account?passkey=removed")),
        Err(PasskeyError::NotFound) => Err(AppError::NotFound),
        Err(PasskeyError::Store(e)) => Err(e.into()),
        Err(other) => Err(AppError::Internal(other.to_string())),
    }
}
