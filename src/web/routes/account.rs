//! `/account`: details, change password, and the user's sessions with revoke buttons.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::context::{self, Current, Visitor, read_form, to_sign_in};
use super::home::render_status;
use crate::accounts::{self, ChangeError, PasswordInput};
use crate::audit::EventExt;
use crate::clock::{format_human, format_ms};
use crate::state::State;
use crate::web::error::{AppError, retry_after_secs};
use crate::web::forms::FormData;
use crate::web::templates::{AccountPage, ActivityRow, Chrome, Field, FormView, SessionRow};

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

async fn page(
    state: &State,
    current: &Current,
    csrf_token: String,
    form: Option<FormView>,
    notice: &str,
) -> Result<AccountPage, AppError> {
    let now = crate::clock::now_ms();
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
    let mut chrome = Chrome::new("Account", Some(&current.user));
    chrome.wide = true;
    Ok(AccountPage {
        chrome,
        user: current.user.clone(),
        created: format_ms(current.user.created_ms),
        created_text: format_human(current.user.created_ms),
        notice: notice.to_owned(),
        form: form.unwrap_or_else(|| password_form(&current.user, &csrf_token)),
        sessions,
        csrf_token,
        sign_ins,
        failed_since_previous,
        previous_sign_in: previous.map(format_human),
    })
}

pub async fn show(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    let visitor = Visitor::of(&req, &state).await?;
    let (Some(current), Some(token)) = (&visitor.current, visitor.session_token(&state)) else {
        return Ok(to_sign_in(&state, "/account"));
    };
    let notice = match req.query_string() {
        "changed=1" => "Your password was changed. You were signed out everywhere else.",
        "revoked=1" => "The session was signed out.",
        "revoked=others" => "All your other sessions were signed out.",
        _ => "",
    };
    render_status(
        StatusCode::OK,
        &page(&state, current, token, None, notice).await?,
    )
}

/// Reads the form, checks CSRF, and requires a session. Anonymous → signed sign-in redirect.
async fn signed_in_form(
    req: &HttpRequest,
    payload: Payload,
    state: &State,
) -> Result<Result<(Visitor, FormData), HttpResponse>, AppError> {
    let form = read_form(req, payload).await?;
    let visitor = Visitor::of(req, state).await?;
    if let Err(e) = visitor.check_csrf(req, state, &form) {
        return Ok(Err(context::forbidden(&visitor, state, e)));
    }
    if visitor.current.is_none() {
        return Ok(Err(to_sign_in(state, "/account")));
    }
    Ok(Ok((visitor, form)))
}

pub async fn change_password(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, AppError> {
    let (visitor, form) = match signed_in_form(&req, payload, &state).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let current = visitor.current.as_ref().expect("checked by signed_in_form");
    let token = visitor.session_token(&state).expect("signed in");
    let client = context::client(&req, &state);
    let outcome = accounts::change_password(
        &state,
        &current.user,
        PasswordInput::from_form(
            form.get("current_password_digest"),
            form.get("current_password"),
            None,
        ),
        PasswordInput::from_form(
            form.get("new_password_digest"),
            form.get("new_password"),
            Some(form.text("new_password_repeat")),
        ),
        &client,
    )
    .await;
    let mut view = password_form(&current.user, &token);
    let (status, retry) = match outcome {
        Ok(signed_in) => {
            let resp = super::see_other("/account?changed=1");
            return Ok(context::signed_in(resp, &state, signed_in));
        }
        Err(ChangeError::App(e)) => return Err(e),
        Err(ChangeError::Locked(retry)) => {
            view.set_error(
                "current_password",
                format!(
                    "Too many wrong passwords. Try again in {} seconds.",
                    retry_after_secs(retry)
                ),
            );
            (StatusCode::TOO_MANY_REQUESTS, Some(retry))
        }
        Err(ChangeError::WrongPassword) => {
            view.set_error("current_password", "Your current password is incorrect.");
            (StatusCode::UNAUTHORIZED, None)
        }
        Err(ChangeError::Invalid(errors)) => {
            for (field, message) in errors.0 {
                let field = field.strip_suffix("_digest").unwrap_or(field);
                view.set_error(field, message);
            }
            (StatusCode::BAD_REQUEST, None)
        }
    };
    let mut resp = render_status(status, &page(&state, current, token, Some(view), "").await?)?;
    if let Some(retry) = retry {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, retry_after_secs(retry).into());
    }
    Ok(resp)
}

pub async fn revoke(
    req: HttpRequest,
    path: web::Path<String>,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, AppError> {
    let (visitor, _) = match signed_in_form(&req, payload, &state).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let current = visitor.current.as_ref().expect("checked by signed_in_form");
    let Ok(id) = path.parse::<i64>() else {
        return Err(AppError::NotFound);
    };
    let user_id = current.user.id;
    let deleted = state.store.delete_user_session(user_id, id).await?;
    if deleted {
        tracing::info!(event = "session_revoked", username = %current.user.username, session = id, "session revoked");
        state.audit.record(
            context::client(&req, &state)
                .event("session_revoke", "ok")
                .user(Some(&current.user.username), Some(user_id))
                .detail(format!("session {id}")),
        );
    }
    Ok(super::see_other("/account?revoked=1"))
}

pub async fn revoke_others(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, AppError> {
    let (visitor, _) = match signed_in_form(&req, payload, &state).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let current = visitor.current.as_ref().expect("checked by signed_in_form");
    let (user_id, keep) = (current.user.id, current.session_id);
    let n = state.store.delete_other_sessions(user_id, keep).await?;
    tracing::info!(event = "sessions_revoked", username = %current.user.username, count = n, "other sessions revoked");
    state.audit.record(
        context::client(&req, &state)
            .event("session_revoke", "ok")
            .user(Some(&current.user.username), Some(user_id))
            .detail(format!("all other sessions ({n})")),
    );
    Ok(super::see_other("/account?revoked=others"))
}
