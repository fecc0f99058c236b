//! Request extractors: every check a request must pass before a handler runs, in one place and
//! in the order docs/design.md ("Extractors and responses") gives: size 413 (or 408) → media
//! type 415 → unparseable body 400 → `Origin`/CSRF 403 → a session where one is needed (303 to
//! sign in, 401 under `/api/`). A handler that takes [`CsrfForm`] cannot see a form that skipped
//! a step.
//!
//! actix polls a handler's extractors in argument order and answers with the first error, so
//! the extractors that answer at once ([`SignUpOpen`], [`SameOrigin`]) go first and at most one
//! reads the body, last; [`Then`] chains a second extractor behind a body.

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::accounts::Client;
use crate::state::State;
use crate::web::error::AppError;
use crate::web::forms::{self, FormData};
use crate::web::respond;
use crate::web::visitor::{self, Current, Visitor};

type Error = actix_web::Error;

/// `e` as this request's client reads it (see [`respond::error`]), as an extractor error.
fn reject(req: &HttpRequest, e: AppError) -> Error {
    let resp = respond::error(req, &e);
    InternalError::from_response(e, resp).into()
}

fn state(req: &HttpRequest) -> Result<State, Error> {
    req.app_data::<State>()
        .cloned()
        .ok_or_else(|| reject(req, AppError::Internal("no application state".into())))
}

/// Who sent `req` (the session lookup), as an extractor error when the lookup fails.
async fn visitor_of(req: &HttpRequest, state: &State) -> Result<Visitor, Error> {
    Visitor::of(req, state).await.map_err(|e| reject(req, e))
}

impl FromRequest for Visitor {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { visitor_of(&req, &state(&req)?).await })
    }
}

/// The client facts alone (address, device cookie, user agent), without a session lookup.
pub struct Peer(pub Client);

impl FromRequest for Peer {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(state(req).map(|s| Peer(visitor::client_of(req, &s))))
    }
}

/// Sign-up is open (`--sign-up open`); else 403 before anything else is looked at.
pub struct SignUpOpen;

impl FromRequest for SignUpOpen {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(state(req).and_then(|s| {
            if s.sign_up_open {
                Ok(SignUpOpen)
            } else {
                Err(reject(req, AppError::SignUpClosed))
            }
        }))
    }
}

/// The request's `Origin` is this site's or absent (a body-less request such as
/// `DELETE /api/session`).
pub struct SameOrigin;

impl FromRequest for SameOrigin {
    type Error = Error;
    type Future = std::future::Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(state(req).and_then(|s| {
            visitor::check_origin(req, &s)
                .map(|()| SameOrigin)
                .map_err(|e| reject(req, e))
        }))
    }
}

/// A signed-in visitor. Anonymous: a page answers 303 to the signed sign-in URL leading back
/// to [`return_target`]; the API answers 401.
pub struct SignedIn(Visitor);

impl SignedIn {
    fn require(req: &HttpRequest, state: &State, visitor: Visitor) -> Result<Self, Error> {
        if visitor.current.is_some() {
            return Ok(SignedIn(visitor));
        }
        if respond::is_api(req) {
            return Err(reject(req, AppError::Unauthorized));
        }
        let resp = respond::to_sign_in(state, &return_target(req));
        Err(InternalError::from_response("sign-in required", resp).into())
    }

    pub fn visitor(&self) -> &Visitor {
        &self.0
    }

    pub fn current(&self) -> &Current {
        self.0.current.as_ref().expect("SignedIn holds a session")
    }

    /// The CSRF token for this session's forms.
    pub fn token(&self, state: &State) -> String {
        self.0
            .session_token(state)
            .expect("SignedIn holds a session")
    }
}

impl FromRequest for SignedIn {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let visitor = visitor_of(&req, &state).await?;
            SignedIn::require(&req, &state, visitor)
        })
    }
}

/// The page a sign-in should lead back to: for `GET` and `HEAD` the request target as received
/// (path and query, so a deep link survives sign-in); for a form post, the page it came from,
/// taken as the first segment of its path (`/account/password` returns to `/account`).
pub fn return_target(req: &HttpRequest) -> String {
    let method = req.method();
    if method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD {
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path(), |pq| pq.as_str());
        if crate::security::redirect::LocalPath::parse(target).is_some() {
            return target.to_owned();
        }
    }
    return_path(req.path()).to_owned()
}

/// The first segment of `path`.
pub fn return_path(path: &str) -> &str {
    let rest = path.strip_prefix('/').unwrap_or(path);
    match rest.find('/') {
        Some(i) => &path[..i + 1],
        None => path,
    }
}

/// An HTML form that passed 413 → 415 → 400 → 403 (`Origin`, then the CSRF token against
/// every binding the browser holds), and who sent it.
pub struct CsrfForm {
    pub visitor: Visitor,
    pub form: FormData,
}

impl CsrfForm {
    async fn extract(req: &HttpRequest, payload: Payload) -> Result<(State, Self), Error> {
        let state = state(req)?;
        let form = forms::read_form(req, payload)
            .await
            .map_err(|e| reject(req, e))?;
        let visitor = visitor_of(req, &state).await?;
        if let Err(e) = visitor.check_csrf(req, &state, &form) {
            // The 403 page also gives the browser a CSRF cookie, so a reload can succeed.
            let (_, cookie) = visitor.anonymous_token(&state);
            let resp = respond::with_cookie(respond::error(req, &e), cookie);
            return Err(InternalError::from_response(e, resp).into());
        }
        Ok((state, CsrfForm { visitor, form }))
    }
}

impl FromRequest for CsrfForm {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move { Ok(Self::extract(&req, payload).await?.1) })
    }
}

/// A [`CsrfForm`] from a signed-in visitor: the session is required after the CSRF check.
pub struct SignedInForm {
    pub user: SignedIn,
    pub form: FormData,
}

impl FromRequest for SignedInForm {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let (state, CsrfForm { visitor, form }) = CsrfForm::extract(&req, payload).await?;
            let user = SignedIn::require(&req, &state, visitor)?;
            Ok(SignedInForm { user, form })
        })
    }
}

/// A JSON body of the API: 413 → 415 → 400 (an object, known fields of the right type) → 403
/// (`Origin`). The API's CSRF defence is the media type, which a cross-site form cannot send.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let state = state(&req)?;
            let body = read_json(&req, &state, payload).await;
            body.map(Json).map_err(|e| reject(&req, e))
        })
    }
}

async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    state: &State,
    payload: Payload,
) -> Result<T, AppError> {
    let body = forms::read_body(req, payload).await?;
    forms::require_media_type(
        req,
        "application/json",
        "Send the body as application/json.",
    )?;
    let parsed = parse_json(&body)?;
    visitor::check_origin(req, state)?;
    Ok(parsed)
}

/// Parses a JSON body strictly (the type's `Deserialize` says which fields and types).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("The JSON body is malformed: {e}.")))
}

/// `A`, then `B` only once `A` succeeded: a body's answers (413, 415, 400, 403) come before
/// whatever `B` could answer.
pub struct Then<A, B>(pub A, pub B);

impl<A, B> FromRequest for Then<A, B>
where
    A: FromRequest + 'static,
    B: FromRequest + 'static,
{
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, mut payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let a = A::from_request(&req, &mut payload)
                .await
                .map_err(Into::into)?;
            let b = B::from_request(&req, &mut payload)
                .await
                .map_err(Into::into)?;
            Ok(Then(a, b))
        })
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
