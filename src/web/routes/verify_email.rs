//! `/verify-email/{token}`: the page a verification link opens (docs/behaviour.md §11.3). GET
//! shows the address and a confirm button (opening never confirms: mail scanners open
//! links); POST confirms it. Also `POST /account/verify-email` (resend), from `/account`.
//! Token pages send `Referrer-Policy: no-referrer`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::accounts::Resent;
use crate::security::token::LinkToken;
use crate::state::State;
use crate::store::tokens::Confirmed;
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, SignedInForm};
use crate::web::respond::{render_status, see_other, with_cookie};
use crate::web::templates::{FormView, SimplePage};
use crate::web::visitor::Visitor;

fn no_referrer(mut resp: HttpResponse) -> HttpResponse {
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn simple(
    visitor: &Visitor,
    status: StatusCode,
    heading: &'static str,
    lede: String,
    form: Option<FormView>,
    link: (&'static str, &'static str),
) -> Result<HttpResponse, AppError> {
    let page = SimplePage {
        chrome: visitor.chrome(heading),
        heading,
        lede,
        notice: String::new(),
        notice_kind: "info",
        form,
        link_href: link.0,
        link_text: link.1,
    };
    Ok(no_referrer(render_status(status, &page)?))
}

fn gone(visitor: &Visitor) -> Result<HttpResponse, AppError> {
    simple(
        visitor,
        StatusCode::GONE,
        "This link no longer works",
        "Confirmation links work once and expire after 24 hours; a newer link replaces an older \
         one. Ask for a new one from your account page."
            .into(),
        None,
        ("/account", "Go to your account"),
    )
}

pub async fn show(
    state: State,
    visitor: Visitor,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = LinkToken::parse(&token) else {
        return gone(&visitor);
    };
    let Some(user) = state.accounts.verify_link_user(&token).await? else {
        return gone(&visitor);
    };
    let (csrf, cookie) = visitor.anonymous_token(&state);
    let form = FormView {
        action: format!("/verify-email/{}", token.as_str()),
        hidden: vec![("csrf_token", csrf)],
        submit: "Confirm this address",
        ..FormView::default()
    };
    let resp = simple(
        &visitor,
        StatusCode::OK,
        "Confirm your email address",
        format!(
            "Confirm {} as the email address of the account {}.",
            user.email.as_deref().unwrap_or_default(),
            user.username
        ),
        Some(form),
        ("", ""),
    )?;
    Ok(with_cookie(resp, cookie))
}

pub async fn confirm(
    state: State,
    token: web::Path<String>,
    posted: CsrfForm,
) -> Result<HttpResponse, AppError> {
    let visitor = posted.visitor;
    let Some(token) = LinkToken::parse(&token) else {
        return gone(&visitor);
    };
    match state
        .accounts
        .confirm_email(&token, &visitor.client)
        .await?
    {
        None => gone(&visitor),
        Some(Confirmed::Taken) => simple(
            &visitor,
            StatusCode::CONFLICT,
            "Address already in use",
            "Another account uses this email address now, so it cannot be confirmed for yours."
                .into(),
            None,
            ("/account", "Go to your account"),
        ),
        Some(Confirmed::Email { email, .. }) => simple(
            &visitor,
            StatusCode::OK,
            "Email address confirmed",
            format!("{email} is confirmed. Thank you."),
            None,
            if visitor.current.is_some() {
                ("/account", "Go to your account")
            } else {
                ("/sign-in", "Sign in")
            },
        ),
    }
}

/// `POST /account/verify-email`: a new confirmation link for the address waiting to be
/// confirmed, within the hourly budget; back to `/account` with a notice.
pub async fn resend(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let current = posted.user.current();
    let details = state
        .store
        .user_details_by_id(current.user.id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let to_confirm = details
        .pending_email
        .clone()
        .or_else(|| details.email.clone().filter(|_| !details.email_verified));
    let resent = state
        .accounts
        .resend_verification(
            details.id,
            &details.username,
            to_confirm.as_deref(),
            &posted.user.visitor().client,
        )
        .await?;
    Ok(see_other(match resent {
        Resent::Queued | Resent::OverBudget => "/account?verify=sent",
        Resent::NothingToConfirm => "/account",
        Resent::MailOff => "/account?verify=off",
    }))
}

/// The 403 page of a right password whose address is not confirmed yet
/// (`--email-verification required`): no session, and a form to set the address (prefilled)
/// and have the link sent (again), carrying a signed ticket instead of a session.
pub fn unverified_page(
    state: &State,
    visitor: &Visitor,
    user_id: i64,
    username: &str,
    email: Option<&str>,
    notice: &str,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now().as_ms();
    let (csrf, cookie) = visitor.anonymous_token(state);
    let form = FormView {
        action: "/sign-in/verify-email".into(),
        fields: vec![
            crate::web::templates::Field::text("email", "Email", "email")
                .kind("email")
                .value(email.unwrap_or("")),
        ],
        hidden: vec![
            (
                "ticket",
                crate::security::ticket::issue(&state.key, user_id, now),
            ),
            ("csrf_token", csrf),
        ],
        submit: "Send the confirmation link",
        ..FormView::default()
    };
    let page = SimplePage {
        chrome: visitor.chrome("Confirm your email address"),
        heading: "Confirm your email address first",
        lede: format!(
            "The account {username} can sign in once its email address is confirmed. Follow the \
             link we mailed to it, or have it sent again (to a corrected address if needed)."
        ),
        notice: notice.to_owned(),
        notice_kind: "info",
        form: Some(form),
        link_href: "",
        link_text: "",
    };
    Ok(with_cookie(
        render_status(StatusCode::FORBIDDEN, &page)?,
        cookie,
    ))
}

/// `POST /sign-in/verify-email` from [`unverified_page`]: sets a corrected address (pending)
/// or sends the link again, for the user the ticket names.
pub async fn resend_without_session(
    state: State,
    posted: CsrfForm,
) -> Result<HttpResponse, AppError> {
    let CsrfForm { visitor, form } = posted;
    let now = state.clock.now().as_ms();
    let Some(user_id) = crate::security::ticket::verify(&state.key, form.text("ticket"), now)
    else {
        return Ok(see_other("/sign-in"));
    };
    let Some(details) = state.store.user_details_by_id(user_id).await? else {
        return Ok(see_other("/sign-in"));
    };
    let typed = form.text("email").trim();
    let outcome = state
        .accounts
        .set_address_and_resend(&details, typed, &visitor.client)
        .await?;
    let notice = match outcome {
        Ok(()) => "If the address can receive mail, a confirmation link is on its way.",
        Err(message) => message,
    };
    let email = if typed.is_empty() {
        details.email.as_deref()
    } else {
        Some(typed)
    };
    unverified_page(&state, &visitor, user_id, &details.username, email, notice)
}
