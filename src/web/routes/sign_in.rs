//! `GET/POST /sign-in`: the sign-in form, fail-lock and signed redirects included, and the
//! one-time "you are signed out" notice after `POST /sign-out`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::security::return_to::ReturnTo;
use crate::state::State;
use crate::web::error::{AppError, retry_after_secs};
use crate::web::extract::CsrfForm;
use crate::web::messages::{self, SignInReply};
use crate::web::respond::{
    GENERIC_FAILURE, human_wait, locked_message, render_status, see_other, with_cookie,
    with_retry_after,
};
use crate::web::session::{self, flash_cookie, flash_cookie_name};
use crate::web::templates::{Field, FormView, SignInPage};
use crate::web::visitor::Visitor;

/// The second step, `/sign-in/code` (§13.1).
#[path = "sign_in_code.rs"]
pub mod code;

fn form_view(csrf_token: String, to: &ReturnTo) -> FormView {
    let mut hidden = vec![
        ("password_digest", String::new()),
        ("csrf_token", csrf_token),
    ];
    hidden.extend(to.hidden_fields());
    FormView {
        action: "/sign-in".into(),
        digest: true,
        fields: vec![
            Field::text("username", "Username", "username"),
            Field::password("password", "Password", "current-password")
                .digest_into("password_digest"),
        ],
        hidden,
        submit: "Sign in",
        ..FormView::default()
    }
}

/// The first `next`, `rd` and `sig` of the query string.
fn query_return(req: &HttpRequest) -> [Option<String>; 3] {
    let mut found: [Option<String>; 3] = Default::default();
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        let slot = match k.as_ref() {
            "next" => 0,
            "rd" => 1,
            "sig" => 2,
            _ => continue,
        };
        found[slot].get_or_insert_with(|| v.into_owned());
    }
    found
}

pub async fn form(
    req: HttpRequest,
    state: State,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let [next, rd, sig] = query_return(&req);
    let to = ReturnTo::verify(
        &state.key,
        &state.forward,
        next.as_deref(),
        rd.as_deref(),
        sig.as_deref(),
    );
    let anonymous = visitor.current.is_none();
    // A signed-in browser sent here by an app's proxy goes straight back: the proxy only sends
    // it when the session did not reach the app (or has just been fixed), so a form would loop.
    if !anonymous && to.is_forward() {
        return Ok(see_other(&to.location()));
    }
    let (token, cookie) = visitor.anonymous_token(&state);
    let secure = state.sessions.secure;
    let flash_value = req.cookie(flash_cookie_name(secure));
    let flash = flash_value.is_some();
    let flash_notice = flash_value.and_then(|c| session::Flash::parse(c.value()));
    let mut chrome = visitor.chrome("Sign in");
    // A sign-in page with a return address is the redirect target of every protected page a
    // crawler might find: one indexable sign-in page is enough.
    chrome.noindex = next.is_some() || rd.is_some() || sig.is_some();
    let page = SignInPage {
        chrome,
        form: form_view(token, &to),
        notice: if let Some(f) = flash_notice.filter(|_| anonymous) {
            f.message().into()
        } else if to != ReturnTo::Welcome && anonymous {
            "Please sign in to continue.".into()
        } else {
            String::new()
        },
        notice_kind: "info",
    };
    let mut resp = allow_form_target(
        with_cookie(render_status(StatusCode::OK, &page)?, cookie),
        &to,
    );
    if flash {
        let _ = resp.add_cookie(&flash_cookie(secure, None));
    }
    Ok(resp)
}

pub async fn submit(state: State, posted: CsrfForm) -> Result<HttpResponse, AppError> {
    let CsrfForm { visitor, form } = posted;
    let to = ReturnTo::verify(
        &state.key,
        &state.forward,
        form.non_empty("next"),
        form.non_empty("rd"),
        form.non_empty("sig"),
    );
    let typed = form.text("username");
    let password = form.password("password");
    let client = &visitor.client;

    let outcome = state
        .accounts
        .sign_in(typed, password, client, visitor.presented)
        .await;
    let (status, notice, retry_after) = match outcome.map_err(messages::sign_in) {
        Ok(signed_in) => {
            let resp = see_other(&to.location());
            return Ok(session::signed_in(resp, &state, signed_in));
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(SignInReply::Failed)) => {
            (StatusCode::UNAUTHORIZED, GENERIC_FAILURE.to_owned(), None)
        }
        Err(Ok(SignInReply::Locked(retry))) => (
            StatusCode::TOO_MANY_REQUESTS,
            locked_message(&human_wait(retry_after_secs(retry))),
            Some(retry),
        ),
        Err(Ok(SignInReply::BadDigest(msg))) => (StatusCode::BAD_REQUEST, msg, None),
        Err(Ok(SignInReply::CodeRequired(passed))) => {
            return code::ask_for_code(&state, passed, &to).await;
        }
        Err(Ok(SignInReply::Unverified {
            user_id,
            username,
            email,
        })) => {
            return crate::web::routes::verify_email::unverified_page(
                &state,
                &visitor,
                user_id,
                &username,
                email.as_deref(),
                "",
            );
        }
    };
    let mut view = form_view(visitor.anonymous_token(&state).0, &to);
    view.set_value("username", typed);
    if status == StatusCode::BAD_REQUEST {
        view.set_error("password", notice.clone());
    }
    let page = SignInPage {
        chrome: visitor.chrome("Sign in"),
        form: view,
        notice,
        notice_kind: "error",
    };
    let resp = allow_form_target(render_status(status, &page)?, &to);
    Ok(match retry_after {
        Some(retry) => with_retry_after(resp, retry),
        None => resp,
    })
}

/// A form whose success leaves for an app's origin (a forward-auth `rd`) needs that origin in
/// its page's `form-action`: browsers apply it to the 303 that follows the post too.
fn allow_form_target(mut resp: HttpResponse, to: &ReturnTo) -> HttpResponse {
    if let Some(origin) = to.foreign_origin()
        && let Ok(v) = actix_web::http::header::HeaderValue::from_str(
            &crate::web::security_headers::csp_with_form_target(&origin),
        )
    {
        resp.headers_mut()
            .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}
