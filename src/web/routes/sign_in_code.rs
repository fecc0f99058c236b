//! `GET/POST /sign-in/code`: the second step of a sign-in for a user with authenticator codes
//! on (§13.1). The password step left a server-side pending record and an `HttpOnly` cookie
//! naming it; the return address (`next`/`rd` with its signature) rides on the record and is
//! verified again here, so the code form carries nothing but the code and its CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::allow_form_target;
use crate::accounts::{PENDING_TTL, PasswordPassed};
use crate::security::return_to::ReturnTo;
use crate::security::session::SessionId;
use crate::state::{AppState, State};
use crate::web::error::{AppError, retry_after_secs};
use crate::web::extract::CsrfForm;
use crate::web::messages::{self, CodeReply, MISSING_CODE, SIGN_IN_EXPIRED, WRONG_CODE};
use crate::web::respond::{
    human_wait, locked_message, render_status, see_other, with_cookie, with_retry_after,
};
use crate::web::templates::{Field, FormView, SimplePage};
use crate::web::visitor::Visitor;

const PATH: &str = "/sign-in/code";

/// The return address as the pending record keeps it: the sign-in form's hidden fields.
fn encode_return(to: &ReturnTo) -> Option<String> {
    let fields = to.hidden_fields();
    (!fields.is_empty()).then(|| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
    })
}

/// The kept return address, verified again (a changed key or forward policy drops it).
fn decode_return(state: &AppState, kept: Option<&str>) -> ReturnTo {
    let mut found: [Option<String>; 3] = Default::default();
    for (k, v) in form_urlencoded::parse(kept.unwrap_or_default().as_bytes()) {
        let slot = match k.as_ref() {
            "next" => 0,
            "rd" => 1,
            "sig" => 2,
            _ => continue,
        };
        found[slot].get_or_insert_with(|| v.into_owned());
    }
    let [next, rd, sig] = found;
    ReturnTo::verify(
        &state.key,
        &state.forward,
        next.as_deref(),
        rd.as_deref(),
        sig.as_deref(),
    )
}

/// The password step passed for a user with codes on: a pending record, its cookie, and 303
/// to the code form. No session and no device cookie yet.
pub(super) async fn ask_for_code(
    state: &AppState,
    passed: PasswordPassed,
    to: &ReturnTo,
) -> Result<HttpResponse, AppError> {
    let id = state
        .accounts
        .begin_code_step(passed, encode_return(to))
        .await?;
    let mut resp = see_other(PATH);
    let _ = resp.add_cookie(&state.sessions.pending_cookie(Some(&id), PENDING_TTL));
    Ok(resp)
}

fn pending_id(req: &HttpRequest, state: &AppState) -> Option<SessionId> {
    req.cookie(state.sessions.pending_cookie_name())
        .and_then(|c| SessionId::parse(c.value()))
}

fn code_form(csrf_token: String) -> FormView {
    let mut code = Field::text("code", "Code", "one-time-code")
        .hint("The 6-digit code your authenticator app shows now, or one of your recovery codes.");
    code.autofocus = true;
    FormView {
        action: PATH.into(),
        fields: vec![code],
        hidden: vec![("csrf_token", csrf_token)],
        submit: "Continue",
        ..FormView::default()
    }
}

fn page(visitor: &Visitor, form: FormView, notice: String) -> SimplePage {
    SimplePage {
        chrome: visitor.chrome("Sign-in code"),
        heading: "Enter your sign-in code",
        lede: "Your password was right. To finish signing in, enter a code from your authenticator app.".into(),
        notice_kind: "error",
        notice,
        form: Some(form),
        link_href: "/sign-in",
        link_text: "Start again",
    }
}

/// No live pending sign-in: back to the password step, and the stale cookie goes.
fn start_again(state: &AppState) -> HttpResponse {
    let mut resp = see_other("/sign-in");
    let _ = resp.add_cookie(&state.sessions.pending_cookie(None, PENDING_TTL));
    resp
}

pub async fn form(
    req: HttpRequest,
    state: State,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let Some(id) = pending_id(&req, &state) else {
        return Ok(start_again(&state));
    };
    let Some(pending) = state.accounts.pending_sign_in(&id).await? else {
        return Ok(start_again(&state));
    };
    let to = decode_return(&state, pending.next_url.as_deref());
    let (token, cookie) = visitor.anonymous_token(&state);
    let resp = render_status(
        StatusCode::OK,
        &page(&visitor, code_form(token), String::new()),
    )?;
    Ok(allow_form_target(with_cookie(resp, cookie), &to))
}

pub async fn submit(
    req: HttpRequest,
    state: State,
    posted: CsrfForm,
) -> Result<HttpResponse, AppError> {
    let CsrfForm { visitor, form } = posted;
    let Some(id) = pending_id(&req, &state) else {
        return expired(&state, &visitor);
    };
    let outcome = state
        .accounts
        .sign_in_code(&id, form.text("code"), &visitor.client, visitor.presented)
        .await;
    let (status, notice, retry) = match outcome.map_err(messages::code) {
        Ok((signed_in, kept)) => {
            let to = decode_return(&state, kept.as_deref());
            let mut resp =
                crate::web::session::signed_in(see_other(&to.location()), &state, signed_in);
            let _ = resp.add_cookie(&state.sessions.pending_cookie(None, PENDING_TTL));
            return Ok(resp);
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(CodeReply::Expired)) => return expired(&state, &visitor),
        Err(Ok(CodeReply::Missing)) => (StatusCode::BAD_REQUEST, MISSING_CODE.to_owned(), None),
        Err(Ok(CodeReply::Wrong)) => (StatusCode::UNAUTHORIZED, WRONG_CODE.to_owned(), None),
        Err(Ok(CodeReply::Locked(retry))) => (
            StatusCode::TOO_MANY_REQUESTS,
            locked_message(&human_wait(retry_after_secs(retry))),
            Some(retry),
        ),
    };
    let mut view = code_form(visitor.anonymous_token(&state).0);
    view.set_error("code", notice.clone());
    let resp = render_status(status, &page(&visitor, view, notice))?;
    Ok(match retry {
        Some(retry) => with_retry_after(resp, retry),
        None => resp,
    })
}

/// A code posted without a live pending sign-in: 401 and the way back to the password step.
fn expired(state: &AppState, visitor: &Visitor) -> Result<HttpResponse, AppError> {
    let page = SimplePage {
        chrome: visitor.chrome("Sign-in code"),
        heading: "Sign in again",
        lede: String::new(),
        notice: SIGN_IN_EXPIRED.into(),
        notice_kind: "error",
        form: None,
        link_href: "/sign-in",
        link_text: "Sign in",
    };
    let mut resp = render_status(StatusCode::UNAUTHORIZED, &page)?;
    let _ = resp.add_cookie(&state.sessions.pending_cookie(None, PENDING_TTL));
    Ok(resp)
}
