//! `GET/POST /sign-in`: the sign-in form, fail-lock and signed redirects included, and the
//! one-time "you are signed out" notice after `POST /sign-out`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};

use super::context::{self, Visitor, read_form, with_cookie};
use super::home::render_status;
use super::sign_out::{signed_out_cookie, signed_out_cookie_name};
use crate::accounts::{self, PasswordInput, SignInError};
use crate::security::redirect::{self, LocalPath};
use crate::state::State;
use crate::web::error::{AppError, retry_after_secs};
use crate::web::templates::{Chrome, Field, FormView, SignInPage};

/// One message for every failed sign-in, whatever the reason.
pub const GENERIC_FAILURE: &str = "The username or password is incorrect.";

fn form_view(csrf_token: String, next: Option<(&LocalPath, &str)>) -> FormView {
    let mut hidden = vec![
        ("password_digest", String::new()),
        ("csrf_token", csrf_token),
    ];
    if let Some((next, sig)) = next {
        hidden.push(("next", next.as_str().to_owned()));
        hidden.push(("sig", sig.to_owned()));
    }
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

fn query_pair(req: &HttpRequest) -> (Option<String>, Option<String>) {
    let mut next = None;
    let mut sig = None;
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        match k.as_ref() {
            "next" if next.is_none() => next = Some(v.into_owned()),
            "sig" if sig.is_none() => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    (next, sig)
}

pub async fn form(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(&req, &state).await?;
    let (token, cookie) = visitor.anonymous_token(&state);
    let (next, sig) = query_pair(&req);
    let verified = match (&next, &sig) {
        (Some(n), Some(s)) => redirect::verify(&state.key, n, s),
        _ => None,
    };
    let sig = sig.unwrap_or_default();
    let secure = state.sessions.secure;
    let flash = req.cookie(signed_out_cookie_name(secure)).is_some();
    let anonymous = visitor.current.is_none();
    let mut chrome = Chrome::new("Sign in", visitor.user());
    // A sign-in page with a `next` is the redirect target of every signed-in page a crawler
    // might find: one indexable sign-in page is enough.
    chrome.noindex = next.is_some() || !sig.is_empty();
    let page = SignInPage {
        chrome,
        form: form_view(token, verified.as_ref().map(|n| (n, sig.as_str()))),
        notice: if flash && anonymous {
            "You are signed out.".into()
        } else if verified.is_some() && anonymous {
            "Please sign in to continue.".into()
        } else {
            String::new()
        },
        notice_kind: "info",
    };
    let mut resp = with_cookie(render_status(StatusCode::OK, &page)?, cookie);
    if flash {
        let _ = resp.add_cookie(&signed_out_cookie(secure, false));
    }
    Ok(resp)
}

pub async fn submit(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, AppError> {
    let form = read_form(&req, payload).await?;
    let visitor = Visitor::of(&req, &state).await?;
    if let Err(e) = visitor.check_csrf(&req, &state, &form) {
        return Ok(context::forbidden(&visitor, &state, e));
    }
    let (next, sig) = (form.non_empty("next"), form.non_empty("sig"));
    let target = redirect::target(&state.key, next, sig);
    let verified = (target.as_str() == next.unwrap_or("")).then_some(&target);
    let typed = form.text("username");
    let password =
        PasswordInput::from_form(form.get("password_digest"), form.get("password"), None);
    let client = context::client(&req, &state);

    let (status, notice, retry_after) =
        match accounts::sign_in(&state, typed, password, &client, visitor.presented).await {
            Ok(signed_in) => {
                let resp = super::see_other(&target.to_location());
                return Ok(context::signed_in(resp, &state, signed_in));
            }
            Err(SignInError::Failed) => {
                (StatusCode::UNAUTHORIZED, GENERIC_FAILURE.to_owned(), None)
            }
            Err(SignInError::Locked(retry)) => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many failed sign-ins for this username. Try again in {}.",
                    human_wait(retry_after_secs(retry))
                ),
                Some(retry),
            ),
            Err(SignInError::BadDigest(msg)) => (StatusCode::BAD_REQUEST, msg, None),
            Err(SignInError::App(e)) => return Err(e),
        };
    let mut view = form_view(
        visitor.anonymous_token(&state).0,
        verified.map(|n| (n, sig.unwrap_or(""))),
    );
    view.set_value("username", typed);
    if status == StatusCode::BAD_REQUEST {
        view.set_error("password", notice.clone());
    }
    let page = SignInPage {
        chrome: Chrome::new("Sign in", visitor.user()),
        form: view,
        notice,
        notice_kind: "error",
    };
    let mut resp = render_status(status, &page)?;
    if let Some(retry) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, retry_after_secs(retry).into());
    }
    Ok(resp)
}

/// "10 minutes", "1 minute", "45 seconds".
fn human_wait(secs: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::human_wait;

    #[test]
    fn waits_read_naturally() {
        assert_eq!(human_wait(600), "10 minutes");
        assert_eq!(human_wait(2), "2 seconds");
        assert_eq!(human_wait(60), "1 minute");
        assert_eq!(human_wait(90), "90 seconds");
        assert_eq!(human_wait(1), "1 second");
        assert_eq!(human_wait(601), "11 minutes");
    }
}
