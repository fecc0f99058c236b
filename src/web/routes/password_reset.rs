//! `/password-reset/{token}`: the page a reset link opens (docs/behaviour.md §11.2). GET shows
//! the user's name and a new-password form (never consuming the link: mail scanners open
//! links); POST sets the password through [`crate::accounts::Accounts::reset_with_link`] and
//! sends the browser to sign in. An unknown, used, superseded or expired link is a 410 page.
//! These pages carry `Referrer-Policy: no-referrer`: the token is in their URL.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::accounts::{LinkResetError, PasswordInput};
use crate::security::token::LinkToken;
use crate::state::State;
use crate::web::error::AppError;
use crate::web::extract::CsrfForm;
use crate::web::messages;
use crate::web::respond::{render_status, see_other, with_cookie};
use crate::web::session::{Flash, flash_cookie};
use crate::web::templates::{Field, FormView, SimplePage};
use crate::web::visitor::Visitor;

fn form_view(token: &LinkToken, username: &str, csrf_token: String) -> FormView {
    FormView {
        action: format!("/password-reset/{}", token.as_str()),
        digest: true,
        data_username: Some(username.to_owned()),
        fields: vec![
            Field::text("username", "Username", "username")
                .value(username)
                .readonly(),
            Field::password("new_password", "New password", "new-password")
                .hint("At least 8 characters.")
                .digest_into("new_password_digest")
                .checked_length(),
            Field::password("new_password_repeat", "Repeat new password", "new-password")
                .repeat_of("new_password"),
        ],
        hidden: vec![
            ("new_password_digest", String::new()),
            ("csrf_token", csrf_token),
        ],
        submit: "Set new password",
    }
}

/// `Referrer-Policy: no-referrer` instead of the site's `same-origin`.
fn no_referrer(mut resp: HttpResponse) -> HttpResponse {
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The 410 page of a link that opens nothing (any more).
fn gone(visitor: &Visitor) -> Result<HttpResponse, AppError> {
    let page = SimplePage {
        chrome: visitor.chrome("Link expired"),
        heading: "This link no longer works",
        lede: "Password reset links work once and expire after a while; a newer link or a \
               password change also ends them."
            .into(),
        notice: String::new(),
        notice_kind: "info",
        form: None,
        link_href: "/password-reset",
        link_text: "Ask for a new link",
    };
    Ok(no_referrer(render_status(StatusCode::GONE, &page)?))
}

fn page(
    visitor: &Visitor,
    form: FormView,
    status: StatusCode,
    username: &str,
) -> Result<HttpResponse, AppError> {
    let page = SimplePage {
        chrome: visitor.chrome("Choose a new password"),
        heading: "Choose a new password",
        lede: format!(
            "For the account {username}. Every browser signed in to it will be signed out."
        ),
        notice: String::new(),
        notice_kind: "info",
        form: Some(form),
        link_href: "",
        link_text: "",
    };
    Ok(no_referrer(render_status(status, &page)?))
}

pub async fn show(
    state: State,
    visitor: Visitor,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = LinkToken::parse(&token) else {
        return gone(&visitor);
    };
    let Some(user) = state.accounts.reset_link_user(&token).await? else {
        return gone(&visitor);
    };
    let (csrf, cookie) = visitor.anonymous_token(&state);
    let form = form_view(&token, &user.username, csrf);
    Ok(with_cookie(
        page(&visitor, form, StatusCode::OK, &user.username)?,
        cookie,
    ))
}

pub async fn submit(
    state: State,
    token: web::Path<String>,
    posted: CsrfForm,
) -> Result<HttpResponse, AppError> {
    let CsrfForm { visitor, form } = posted;
    let Some(token) = LinkToken::parse(&token) else {
        return gone(&visitor);
    };
    let new = PasswordInput::from_form(
        form.get("new_password_digest"),
        form.get("new_password"),
        Some(form.text("new_password_repeat")),
    );
    match state
        .accounts
        .reset_with_link(&token, new, &visitor.client)
        .await
    {
        Ok(_) => {
            let resp = see_other("/sign-in");
            Ok(no_referrer(with_cookie(
                resp,
                Some(flash_cookie(
                    state.sessions.secure,
                    Some(Flash::PasswordReset),
                )),
            )))
        }
        Err(LinkResetError::Gone) => gone(&visitor),
        Err(LinkResetError::Invalid(errors)) => {
            let Some(user) = state.accounts.reset_link_user(&token).await? else {
                return gone(&visitor);
            };
            let mut view = form_view(&token, &user.username, visitor.anonymous_token(&state).0);
            for (field, message) in messages::fields(errors) {
                view.set_error(field, message);
            }
            page(&visitor, view, StatusCode::BAD_REQUEST, &user.username)
        }
        Err(LinkResetError::Refused(r)) => Err(r.into()),
        Err(LinkResetError::Kdf(e)) => Err(e.into()),
        Err(LinkResetError::Store(e)) => Err(e.into()),
    }
}
