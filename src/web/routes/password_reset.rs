//! `/password-reset`: the form asking for a link by username or email, answered with one page
//! whatever the login (the work happens after the answer: [`crate::accounts::Accounts::
//! request_reset`]); without mail it says to ask the operator.
//!
//! `/password-reset/{token}`: the page a reset link opens (docs/behaviour.md §11.2). GET shows
//! the user's name and a new-password form (never consuming the link: mail scanners open
//! links); POST sets the password through [`crate::accounts::Accounts::reset_with_link`] and
//! sends the browser to sign in. An unknown, used, superseded or expired link is a 410 page.
//! These pages carry `Referrer-Policy: no-referrer`: the token is in their URL.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::accounts::{LinkResetError, ResetAsked};
use crate::security::token::LinkToken;
use crate::state::State;
use crate::web::error::AppError;
use crate::web::extract::CsrfForm;
use crate::web::messages;
use crate::web::respond::{render_status, see_other, with_cookie};
use crate::web::session::{Flash, flash_cookie};
use crate::web::templates::{Field, FormView, SimplePage};
use crate::web::visitor::Visitor;

/// What the form page says when the site sends no mail (GET and POST alike).
const MAIL_OFF: &str = "This site does not send email, so it cannot mail you a reset link. \
                        Ask the site's operator for one.";

/// The answer to every request for a link, whatever the login.
const ON_ITS_WAY: &str = "If an account matches and has a verified email address, \
                          a link to choose a new password is on its way.";

fn ask_view(csrf_token: String) -> FormView {
    FormView {
        action: "/password-reset".into(),
        fields: vec![Field::text("login", "Username or email", "username")],
        hidden: vec![("csrf_token", csrf_token)],
        submit: "Send me a link",
        ..FormView::default()
    }
}

fn ask_page(
    state: &State,
    visitor: &Visitor,
    status: StatusCode,
    form: Option<FormView>,
) -> Result<HttpResponse, AppError> {
    let mail_on = state.mail.is_some();
    let ttl = crate::mail::message::describe_duration(state.accounts.reset_ttl());
    let page = SimplePage {
        chrome: visitor.chrome("Reset your password"),
        heading: "Reset your password",
        lede: if mail_on {
            format!(
                "Enter your username or your account's email address. If the account has a \
                 verified email address, we mail it a link to choose a new password; the link \
                 works once, for {ttl}."
            )
        } else {
            MAIL_OFF.into()
        },
        notice: String::new(),
        notice_kind: "info",
        form: form.filter(|_| mail_on),
        link_href: "/sign-in",
        link_text: "Back to sign in",
    };
    render_status(status, &page)
}

/// `GET /password-reset`.
pub async fn ask_form(state: State, visitor: Visitor) -> Result<HttpResponse, AppError> {
    let (csrf, cookie) = visitor.anonymous_token(&state);
    let form = ask_view(csrf);
    Ok(with_cookie(
        ask_page(&state, &visitor, StatusCode::OK, Some(form))?,
        cookie,
    ))
}

/// `POST /password-reset`: one page for every login (or 429 for a throttled address).
pub async fn ask(state: State, posted: CsrfForm) -> Result<HttpResponse, AppError> {
    let CsrfForm { visitor, form } = posted;
    let login = form.text("login").trim();
    if login.is_empty() && state.mail.is_some() {
        let mut view = ask_view(visitor.anonymous_token(&state).0);
        view.set_error("login", "Enter your username or email address.");
        return ask_page(&state, &visitor, StatusCode::BAD_REQUEST, Some(view));
    }
    match state.accounts.request_reset(login, &visitor.client).await? {
        ResetAsked::MailOff => ask_page(&state, &visitor, StatusCode::OK, None),
        ResetAsked::Accepted => {
            let page = SimplePage {
                chrome: visitor.chrome("Check your inbox"),
                heading: "Check your inbox",
                lede: format!(
                    "The link works once, for {}. Nothing arrived? Check your spam folder, \
                     or ask again in a few minutes.",
                    crate::mail::message::describe_duration(state.accounts.reset_ttl())
                ),
                notice: ON_ITS_WAY.into(),
                notice_kind: "info",
                form: None,
                link_href: "/sign-in",
                link_text: "Back to sign in",
            };
            render_status(StatusCode::OK, &page)
        }
    }
}

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
    let new = form.new_password("new_password");
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
