//! `/account`: details, change password, and the user's sessions with revoke buttons.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use crate::clock::{format_human, format_ms};
use crate::state::State;
use crate::web::error::AppError;
use crate::web::extract::{SignedIn, SignedInForm};
use crate::web::messages::{self, ChangeReply, WRONG_CURRENT_PASSWORD};
use crate::web::respond::{password_locked_message, render_status, see_other, with_retry_after};
use crate::web::templates::{
    AccountPage, ActivityRow, Field, FormView, PasskeyRow, SessionRow, TwoStepSection,
};

fn password_form(user: &crate::store::User, csrf_token: &str) -> FormView {
    FormView {
        action: "/account/password".into(),
        digest: true,
        data_username: Some(user.username.clone()),
        fields: vec![
            Field::password("current_password", "Current password", "current-password")
                .digest_into("current_password_digest"),
            Field::password("new_password", "New password", "new-password")
                .hint("At least 8 characters.")
                .digest_into("new_password_digest")
                .checked_length(),
            Field::password("new_password_repeat", "Repeat new password", "new-password")
                .repeat_of("new_password"),
        ],
        hidden: vec![
            ("current_password_digest", String::new()),
            ("new_password_digest", String::new()),
            ("csrf_token", csrf_token.to_owned()),
        ],
        submit: "Change password",
    }
}

/// The form that edits the full name and the email (the latter with the current password).
fn profile_form(user: &crate::store::User, csrf_token: &str) -> FormView {
    let mut password = Field::password("current_password", "Current password", "current-password")
        .digest_into("current_password_digest")
        .hint("Needed only to change the email address.")
        .optional();
    password.id = "profile_password";
    FormView {
        action: "/account/profile".into(),
        digest: true,
        data_username: Some(user.username.clone()),
        fields: vec![
            Field::text("full_name", "Full name", "name")
                .optional()
                .value(user.full_name.as_deref().unwrap_or("")),
            Field::text("email", "Email", "email")
                .kind("email")
                .optional()
                .value(user.email.as_deref().unwrap_or("")),
            password,
        ],
        hidden: vec![
            ("current_password_digest", String::new()),
            ("csrf_token", csrf_token.to_owned()),
        ],
        submit: "Save details",
    }
}

/// The form that deletes the account, with the current password.
fn delete_form(user: &crate::store::User, csrf_token: &str) -> FormView {
    let mut password = Field::password("current_password", "Current password", "current-password")
        .digest_into("current_password_digest");
    // Another id than the password form's field of the same name.
    password.id = "delete_password";
    FormView {
        action: "/account/delete".into(),
        digest: true,
        data_username: Some(user.username.clone()),
        fields: vec![password],
        hidden: vec![
            ("current_password_digest", String::new()),
            ("csrf_token", csrf_token.to_owned()),
        ],
        submit: "Delete my account",
    }
}

async fn page(
    state: &State,
    signed_in: &SignedIn,
    form: Option<FormView>,
    notice: &str,
) -> Result<AccountPage, AppError> {
    page_with(state, signed_in, form, None, notice).await
}

/// Which of the page's forms to show as posted (with its errors) instead of fresh.
enum Posted {
    Profile(FormView),
    Delete(FormView),
    /// The two-step section as a two-step handler left it.
    TwoStep(Box<TwoStepSection>),
}

/// The "Two-step sign-in" section (§13.1).
#[path = "account_two_step.rs"]
pub mod two_step;

async fn page_with(
    state: &State,
    signed_in: &SignedIn,
    form: Option<FormView>,
    posted: Option<Posted>,
    notice: &str,
) -> Result<AccountPage, AppError> {
    let (profile, delete, two_step) = match posted {
        Some(Posted::Profile(f)) => (Some(f), None, None),
        Some(Posted::Delete(f)) => (None, Some(f), None),
        Some(Posted::TwoStep(t)) => (None, None, Some(*t)),
        None => (None, None, None),
    };
    let current = signed_in.current();
    let csrf_token = signed_in.token(state);
    let now = state.clock.now().as_ms();
    let idle = state.sessions.idle.as_millis() as i64;
    let user_id = current.user.id;
    let rows = state.store.sessions_of(user_id, now, idle).await?;
    let sessions = rows
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            created: format_ms(s.created_ms),
            created_text: format_human(s.created_ms),
            last_seen: format_ms(s.last_seen_ms),
            last_seen_text: format_human(s.last_seen_ms),
            browser: s.user_agent.as_deref().map_or_else(
                || "Unknown".into(),
                crate::web::request::describe_user_agent,
            ),
            user_agent: s.user_agent.unwrap_or_else(|| "unknown".into()),
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            current: s.id == current.session_id,
        })
        .collect();
    let recent = state.store.recent_sign_ins(user_id, 5).await?;
    // The latest sign-in is usually this very session's; failures count from the one before.
    let previous = recent.get(1).map(|r| r.at_ms);
    let failed_since_previous = state
        .store
        .failed_sign_ins_since(user_id, previous.unwrap_or(0))
        .await?;
    let sign_ins = recent
        .into_iter()
        .map(|r| ActivityRow {
            at: format_ms(r.at_ms),
            at_text: format_human(r.at_ms),
            ip: r.ip.unwrap_or_else(|| "unknown".into()),
            browser: r.user_agent.as_deref().map_or_else(
                || "Unknown".into(),
                crate::web::request::describe_user_agent,
            ),
            user_agent: r.user_agent.unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    let details = state.store.user_details_by_id(user_id).await?;
    let (email_verified, pending_email) = details
        .map(|d| (d.email_verified, d.pending_email))
        .unwrap_or_default();
    let two_step = match two_step {
        Some(t) => t,
        None => two_step::section(state, &current.user, &csrf_token).await?,
    };
    let passkeys = state
        .accounts
        .passkeys(user_id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: format_ms(p.created_ms),
            created_text: format_human(p.created_ms),
            last_used: p.last_used_ms.map(format_ms).unwrap_or_default(),
            last_used_text: p.last_used_ms.map_or_else(|| "never".into(), format_human),
        })
        .collect();
    let mut chrome = signed_in.visitor().chrome("Account");
    chrome.wide = true;
    Ok(AccountPage {
        chrome,
        user: current.user.clone(),
        created: format_ms(current.user.created_ms),
        created_text: format_human(current.user.created_ms),
        notice: notice.to_owned(),
        form: form.unwrap_or_else(|| password_form(&current.user, &csrf_token)),
        profile_form: profile.unwrap_or_else(|| profile_form(&current.user, &csrf_token)),
        delete_form: delete.unwrap_or_else(|| delete_form(&current.user, &csrf_token)),
        email_verified,
        pending_email,
        mail_on: state.mail.is_some(),
        sessions,
        csrf_token,
        sign_ins,
        failed_since_previous,
        previous_sign_in: previous.map(format_human),
        two_step,
        passkeys,
    })
}

pub async fn show(
    req: HttpRequest,
    state: State,
    signed_in: SignedIn,
) -> Result<HttpResponse, AppError> {
    let notice = match req.query_string() {
        "changed=1" => "Your password was changed. You were signed out everywhere else.",
        "revoked=1" => "The session was signed out.",
        "revoked=others" => "All your other sessions were signed out.",
        "verify=sent" => "If an address is waiting for confirmation, a new link is on its way.",
        "verify=off" => "This site does not send mail: ask its operator to confirm your address.",
        "profile=1" => "Your details were saved.",
        "two-step=off" => "Two-step sign-in is off. Your recovery codes no longer work.",
        "passkey=added" => "Your passkey was added.",
        "passkey=renamed" => "The passkey was renamed.",
        "passkey=removed" => "The passkey was removed.",
        "email=pending" => {
            "Check the inbox of your new address for a confirmation link. Until you confirm it, \
             your old address stays in use."
        }
        _ => "",
    };
    render_status(
        StatusCode::OK,
        &page(&state, &signed_in, None, notice).await?,
    )
}

pub async fn change_password(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let SignedInForm {
        user: signed_in,
        form,
    } = posted;
    let current = signed_in.current();
    let token = signed_in.token(&state);
    let client = &signed_in.visitor().client;
    let outcome = state
        .accounts
        .change_password(
            &current.user,
            form.password("current_password"),
            form.new_password("new_password"),
            client,
        )
        .await;
    let mut view = password_form(&current.user, &token);
    let (status, retry) = match outcome.map_err(messages::change_password) {
        Ok(signed_in) => {
            let resp = see_other("/account?changed=1");
            return Ok(crate::web::session::signed_in(resp, &state, signed_in));
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(reply)) => refused(&mut view, reply),
    };
    let resp = render_status(status, &page(&state, &signed_in, Some(view), "").await?)?;
    Ok(match retry {
        Some(retry) => with_retry_after(resp, retry),
        None => resp,
    })
}

pub async fn revoke(
    path: web::Path<String>,
    state: State,
    posted: SignedInForm,
) -> Result<HttpResponse, AppError> {
    let current = posted.user.current();
    let Ok(id) = path.parse::<i64>() else {
        return Err(AppError::NotFound);
    };
    let client = &posted.user.visitor().client;
    state
        .accounts
        .revoke_session(&current.user, id, client)
        .await?;
    Ok(see_other("/account?revoked=1"))
}

pub async fn revoke_others(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let current = posted.user.current();
    let client = &posted.user.visitor().client;
    state
        .accounts
        .revoke_other_sessions(&current.user, current.session_id, client)
        .await?;
    Ok(see_other("/account?revoked=others"))
}

/// `POST /account/delete`: with the current password (§4's lock applies), deletes the account
/// and every session, then sends the browser to the sign-in page with a notice.
pub async fn delete(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let SignedInForm {
        user: signed_in,
        form,
    } = posted;
    let current = signed_in.current();
    let outcome = state
        .accounts
        .delete_account(
            &current.user,
            form.password("current_password"),
            &signed_in.visitor().client,
        )
        .await;
    let mut view = delete_form(&current.user, &signed_in.token(&state));
    let (status, retry) = match outcome.map_err(messages::confirm) {
        Ok(()) => {
            let mut resp = see_other("/sign-in");
            let _ = resp.add_cookie(&state.sessions.clear_session_cookie());
            let flash = crate::web::session::flash_cookie(
                state.sessions.secure,
                Some(crate::web::session::Flash::AccountDeleted),
            );
            let _ = resp.add_cookie(&flash);
            return Ok(resp);
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(reply)) => refused(&mut view, reply),
    };
    let resp = render_status(
        status,
        &page_with(&state, &signed_in, None, Some(Posted::Delete(view)), "").await?,
    )?;
    Ok(match retry {
        Some(retry) => with_retry_after(resp, retry),
        None => resp,
    })
}

/// `POST /account/profile`: the full name, and the email with the current password.
pub async fn profile(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let SignedInForm {
        user: signed_in,
        form,
    } = posted;
    let current = signed_in.current();
    let outcome = state
        .accounts
        .update_profile(
            &current.user,
            crate::accounts::ProfileInput {
                full_name: form.get("full_name"),
                email: form.get("email"),
                password: form.password("current_password"),
            },
            &signed_in.visitor().client,
        )
        .await;
    let mut view = profile_form(&current.user, &signed_in.token(&state));
    view.set_value("full_name", form.text("full_name"));
    view.set_value("email", form.text("email"));
    let (status, retry) = match outcome {
        Ok(changed) if changed.email_pending => return Ok(see_other("/account?email=pending")),
        Ok(_) => return Ok(see_other("/account?profile=1")),
        Err(crate::accounts::ProfileError::Invalid(errors)) => {
            for (field, message) in messages::fields(errors) {
                view.set_error(field, message);
            }
            (StatusCode::BAD_REQUEST, None)
        }
        Err(crate::accounts::ProfileError::EmailTaken) => {
            view.set_error("email", "An account with this email already exists.");
            (StatusCode::CONFLICT, None)
        }
        Err(crate::accounts::ProfileError::Store(e)) => return Err(e.into()),
        Err(crate::accounts::ProfileError::Confirm(e)) => refused(&mut view, messages::confirm(e)?),
    };
    let resp = render_status(
        status,
        &page_with(&state, &signed_in, None, Some(Posted::Profile(view)), "").await?,
    )?;
    Ok(match retry {
        Some(retry) => with_retry_after(resp, retry),
        None => resp,
    })
}

/// A refused current password on one of the page's forms: the message at its field, and the
/// status (with `Retry-After` when locked).
fn refused(view: &mut FormView, reply: ChangeReply) -> (StatusCode, Option<std::time::Duration>) {
    match reply {
        ChangeReply::Locked(retry) => {
            view.set_error("current_password", password_locked_message(retry));
            (StatusCode::TOO_MANY_REQUESTS, Some(retry))
        }
        ChangeReply::WrongPassword => {
            view.set_error("current_password", WRONG_CURRENT_PASSWORD);
            (StatusCode::UNAUTHORIZED, None)
        }
        ChangeReply::Invalid(errors) => {
            for (field, message) in errors {
                let field = field.strip_suffix("_digest").unwrap_or(field);
                view.set_error(field, message);
            }
            (StatusCode::BAD_REQUEST, None)
        }
    }
}
