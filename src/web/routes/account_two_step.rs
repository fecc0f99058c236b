//! `/account`'s "Two-step sign-in" section (§13.1): start a set-up (the secret as base32, an
//! `otpauth://` link and an inline SVG QR code; the CSP allows no `data:` image), confirm it
//! with a code (the ten recovery codes are then shown once), new recovery codes (current
//! password) and turning codes off (current password and a code).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::{Posted, page_with, refused};
use crate::accounts::TotpSetUp;
use crate::state::{AppState, State};
use crate::store::User;
use crate::web::error::AppError;
use crate::web::extract::SignedInForm;
use crate::web::messages::{self, MISSING_CODE, TwoStepReply};
use crate::web::respond::{render_status, see_other, with_retry_after};
use crate::web::templates::{Field, FormView, SetUpView, TwoStepSection};

const WRONG_CONFIRM_CODE: &str =
    "That code is not right. Check the app's clock and enter the code it shows now.";
const WRONG_OFF_CODE: &str = "That code is not right, or it was already used.";

fn csrf_only(action: &str, csrf_token: &str, submit: &'static str) -> FormView {
    FormView {
        action: action.into(),
        hidden: vec![("csrf_token", csrf_token.to_owned())],
        submit,
        ..FormView::default()
    }
}

fn code_field(id: &'static str) -> Field {
    let mut f = Field::text("code", "Code", "one-time-code")
        .hint("The 6-digit code your authenticator app shows now.");
    f.id = id;
    f
}

fn password_field(id: &'static str) -> Field {
    let mut f = Field::password("current_password", "Current password", "current-password")
        .digest_into("current_password_digest");
    f.id = id;
    f
}

fn with_password(
    user: &User,
    action: &str,
    csrf_token: &str,
    submit: &'static str,
    fields: Vec<Field>,
) -> FormView {
    FormView {
        action: action.into(),
        digest: true,
        data_username: Some(user.username.clone()),
        fields,
        hidden: vec![
            ("current_password_digest", String::new()),
            ("csrf_token", csrf_token.to_owned()),
        ],
        submit,
    }
}

fn confirm_form(csrf_token: &str) -> FormView {
    FormView {
        fields: vec![code_field("confirm_code")],
        ..csrf_only("/account/two-step/confirm", csrf_token, "Turn on")
    }
}

fn renew_form(user: &User, csrf_token: &str) -> FormView {
    with_password(
        user,
        "/account/two-step/recovery-codes",
        csrf_token,
        "Make new recovery codes",
        vec![password_field("renew_password")],
    )
}

fn off_form(user: &User, csrf_token: &str) -> FormView {
    let mut code = code_field("off_code");
    code.hint = "A code from your authenticator app, or a recovery code.";
    with_password(
        user,
        "/account/two-step/off",
        csrf_token,
        "Turn off two-step sign-in",
        vec![password_field("off_password"), code],
    )
}

/// The QR code of `uri` as an inline `<svg>` element.
fn qr_svg(uri: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    // Drop the XML declaration: the element goes inside an HTML page.
    svg.find("<svg")
        .map_or(svg.clone(), |i| svg[i..].to_owned())
}

fn set_up_view(s: &TotpSetUp) -> SetUpView {
    SetUpView {
        secret: s.secret.base32(),
        otpauth_uri: s.otpauth_uri.clone(),
        qr_svg: qr_svg(&s.otpauth_uri),
    }
}

/// The section as it stands for `user`.
pub(super) async fn section(
    state: &AppState,
    user: &User,
    csrf_token: &str,
) -> Result<TwoStepSection, AppError> {
    let st = state.store.two_step_state(user.id).await?;
    let setup = if st.enabled() {
        None
    } else {
        // A set-up whose secret does not open (the site key changed) is shown as none: the
        // user starts again.
        match state.accounts.pending_totp(user).await {
            Ok(s) => s.as_ref().map(set_up_view),
            Err(crate::accounts::TwoStepError::Store(e)) => return Err(e.into()),
            Err(_) => None,
        }
    };
    Ok(TwoStepSection {
        on: st.enabled(),
        recovery_left: st.recovery_left,
        setup,
        new_codes: Vec::new(),
        notice: String::new(),
        start_form: csrf_only(
            "/account/two-step/setup",
            csrf_token,
            "Set up authenticator codes",
        ),
        confirm_form: confirm_form(csrf_token),
        renew_form: renew_form(user, csrf_token),
        off_form: off_form(user, csrf_token),
    })
}

/// The account page with `section` in place of the fresh one.
async fn answer(
    state: &State,
    signed_in: &crate::web::extract::SignedIn,
    status: StatusCode,
    section: TwoStepSection,
    retry: Option<std::time::Duration>,
) -> Result<HttpResponse, AppError> {
    let page = page_with(
        state,
        signed_in,
        None,
        Some(Posted::TwoStep(Box::new(section))),
        "",
    )
    .await?;
    let resp = render_status(status, &page)?;
    Ok(match retry {
        Some(retry) => with_retry_after(resp, retry),
        None => resp,
    })
}

/// `POST /account/two-step/setup`: a new secret, shown with its confirm form.
pub async fn start(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let signed_in = posted.user;
    let user = &signed_in.current().user;
    let token = signed_in.token(&state);
    let setup = match state
        .accounts
        .begin_totp(user)
        .await
        .map_err(messages::two_step)
    {
        Ok(s) => s,
        Err(Ok(_)) => return Ok(see_other("/account#two-step")),
        Err(Err(e)) => return Err(e),
    };
    let mut section = section(&state, user, &token).await?;
    section.setup = Some(set_up_view(&setup));
    answer(&state, &signed_in, StatusCode::OK, section, None).await
}

/// `POST /account/two-step/confirm`: a right code turns codes on and shows the recovery codes
/// once; a wrong one keeps them off (400, the set-up again).
pub async fn confirm(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let SignedInForm {
        user: signed_in,
        form,
    } = posted;
    let user = &signed_in.current().user;
    let token = signed_in.token(&state);
    let client = &signed_in.visitor().client;
    let outcome = state
        .accounts
        .confirm_totp(user, form.text("code"), client)
        .await;
    let message = match outcome.map_err(messages::two_step) {
        Ok(codes) => {
            let mut section = section(&state, user, &token).await?;
            section.new_codes = codes;
            section.notice = "Two-step sign-in is on.".into();
            return answer(&state, &signed_in, StatusCode::OK, section, None).await;
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(TwoStepReply::MissingCode)) => MISSING_CODE,
        Err(Ok(TwoStepReply::WrongCode)) => WRONG_CONFIRM_CODE,
        Err(Ok(_)) => return Ok(see_other("/account#two-step")),
    };
    let mut section = section(&state, user, &token).await?;
    section.confirm_form.set_error("code", message);
    answer(&state, &signed_in, StatusCode::BAD_REQUEST, section, None).await
}

/// `POST /account/two-step/recovery-codes`: with the current password, ten new codes replace
/// the old ones and are shown once.
pub async fn renew(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let SignedInForm {
        user: signed_in,
        form,
    } = posted;
    let user = &signed_in.current().user;
    let token = signed_in.token(&state);
    let client = &signed_in.visitor().client;
    let current = form.password("current_password");
    let outcome = state
        .accounts
        .renew_recovery_codes(user, current, client)
        .await;
    let mut section = section(&state, user, &token).await?;
    let (status, retry) = match outcome.map_err(messages::two_step) {
        Ok(codes) => {
            section.new_codes = codes;
            section.notice = "Your old recovery codes no longer work.".into();
            return answer(&state, &signed_in, StatusCode::OK, section, None).await;
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(TwoStepReply::Password(reply))) => refused(&mut section.renew_form, reply),
        Err(Ok(_)) => return Ok(see_other("/account#two-step")),
    };
    answer(&state, &signed_in, status, section, retry).await
}

/// `POST /account/two-step/off`: with the current password and a code, codes are off and the
/// recovery codes are gone.
pub async fn off(state: State, posted: SignedInForm) -> Result<HttpResponse, AppError> {
    let SignedInForm {
        user: signed_in,
        form,
    } = posted;
    let user = &signed_in.current().user;
    let token = signed_in.token(&state);
    let client = &signed_in.visitor().client;
    let current = form.password("current_password");
    let outcome = state
        .accounts
        .turn_off_totp(user, current, form.text("code"), client)
        .await;
    let mut section = section(&state, user, &token).await?;
    let (status, retry) = match outcome.map_err(messages::two_step) {
        Ok(()) => return Ok(see_other("/account?two-step=off")),
        Err(Err(e)) => return Err(e),
        Err(Ok(TwoStepReply::Password(reply))) => refused(&mut section.off_form, reply),
        Err(Ok(TwoStepReply::MissingCode)) => {
            section.off_form.set_error("code", MISSING_CODE);
            (StatusCode::BAD_REQUEST, None)
        }
        Err(Ok(TwoStepReply::WrongCode)) => {
            section.off_form.set_error("code", WRONG_OFF_CODE);
            (StatusCode::UNAUTHORIZED, None)
        }
        Err(Ok(TwoStepReply::Stale)) => return Ok(see_other("/account#two-step")),
    };
    answer(&state, &signed_in, status, section, retry).await
}
