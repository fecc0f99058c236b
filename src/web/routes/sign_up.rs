//! `GET/POST /sign-up`: the registration form.

use actix_web::http::StatusCode;
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};

use super::context::{self, Visitor, read_form, with_cookie};
use super::home::render_status;
use crate::accounts::{self, PasswordInput, SignUpError, SignUpInput};
use crate::state::State;
use crate::web::error::AppError;
use crate::web::templates::{Chrome, Field, FormView, SignUpPage};

fn form_view(csrf_token: String) -> FormView {
    FormView {
        action: "/sign-up".into(),
        digest: true,
        fields: vec![
            Field::text("username", "Username", "username")
                .hint("3–32 characters: letters a–z, digits and underscores."),
            Field::password("password", "Password", "new-password")
                .hint("At least 8 characters.")
                .digest_into("password_digest")
                .checked_length(),
            Field::password("password_repeat", "Repeat password", "new-password")
                .repeat_of("password"),
            Field::text("email", "Email", "email")
                .kind("email")
                .optional(),
            Field::text("full_name", "Full name", "name").optional(),
        ],
        hidden: vec![
            ("password_digest", String::new()),
            ("csrf_token", csrf_token),
        ],
        submit: "Create account",
        ..FormView::default()
    }
}

fn page(req_visitor: &Visitor, form: FormView) -> SignUpPage {
    SignUpPage {
        chrome: Chrome::new("Create account", req_visitor.user()),
        form,
    }
}

/// With `--sign-up closed` only `gatehouse user add` creates accounts.
pub fn open(state: &State) -> Result<(), AppError> {
    if state.sign_up_open {
        Ok(())
    } else {
        Err(AppError::SignUpClosed)
    }
}

pub async fn form(req: HttpRequest, state: State) -> Result<HttpResponse, AppError> {
    open(&state)?;
    let visitor = Visitor::of(&req, &state).await?;
    let (token, cookie) = visitor.anonymous_token(&state);
    let resp = render_status(StatusCode::OK, &page(&visitor, form_view(token)))?;
    Ok(with_cookie(resp, cookie))
}

pub async fn submit(
    req: HttpRequest,
    payload: Payload,
    state: State,
) -> Result<HttpResponse, AppError> {
    open(&state)?;
    let form = read_form(&req, payload).await?;
    let visitor = Visitor::of(&req, &state).await?;
    if let Err(e) = visitor.check_csrf(&req, &state, &form) {
        return Ok(context::forbidden(&visitor, &state, e));
    }
    let input = SignUpInput {
        username: form.text("username"),
        email: form.text("email"),
        full_name: form.text("full_name"),
        password: PasswordInput::from_form(
            form.get("password_digest"),
            form.get("password"),
            Some(form.text("password_repeat")),
        ),
    };
    let client = context::client(&req, &state);
    let outcome = accounts::sign_up(&state, input, &client, Some(visitor.presented)).await;
    let (status, view) = match outcome {
        Ok((user, Some(session))) => {
            let signed_in = accounts::SignedIn {
                device_token: crate::security::device::issue(
                    &state.key,
                    user.id,
                    user.created_ms,
                    user.created_ms,
                ),
                username: user.username,
                session,
            };
            return Ok(context::signed_in(
                super::see_other("/welcome"),
                &state,
                signed_in,
            ));
        }
        // Created, but the password changed before the session opened: sign in by hand.
        Ok((_, None)) => return Ok(super::see_other("/sign-in")),
        Err(SignUpError::App(e)) => return Err(e),
        Err(SignUpError::Invalid(errors)) => {
            let mut view = form_view(visitor.anonymous_token(&state).0);
            for (field, message) in errors.0 {
                // Digest problems are shown at the password the person typed.
                let field = if field == "password_digest" {
                    "password"
                } else {
                    field
                };
                view.set_error(field, message);
            }
            (StatusCode::BAD_REQUEST, view)
        }
        Err(SignUpError::Taken { field, message }) => {
            let mut view = form_view(visitor.anonymous_token(&state).0);
            view.set_error(field, message);
            (StatusCode::CONFLICT, view)
        }
    };
    let mut view = view;
    for name in ["username", "email", "full_name"] {
        view.set_value(name, form.text(name));
    }
    render_status(status, &page(&visitor, view))
}
