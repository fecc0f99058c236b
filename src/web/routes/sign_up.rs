//! `GET/POST /sign-up`: the registration form.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::accounts::{SignUpInput, SignedUp};
use crate::state::State;
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, SignUpOpen};
use crate::web::messages::{self, SignUpReply};
use crate::web::respond::{render_status, see_other, with_cookie};
use crate::web::session;
use crate::web::templates::{Field, FormView, SignUpPage};
use crate::web::visitor::Visitor;

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

fn page(visitor: &Visitor, form: FormView) -> SignUpPage {
    SignUpPage {
        chrome: visitor.chrome("Create account"),
        form,
    }
}

/// With `--sign-up closed` only `gatehouse user add` creates accounts ([`SignUpOpen`]).
pub async fn form(_: SignUpOpen, state: State, visitor: Visitor) -> Result<HttpResponse, AppError> {
    let (token, cookie) = visitor.anonymous_token(&state);
    let resp = render_status(StatusCode::OK, &page(&visitor, form_view(token)))?;
    Ok(with_cookie(resp, cookie))
}

pub async fn submit(
    _: SignUpOpen,
    state: State,
    posted: CsrfForm,
) -> Result<HttpResponse, AppError> {
    let CsrfForm { visitor, form } = posted;
    let input = SignUpInput {
        username: form.text("username"),
        email: form.text("email"),
        full_name: form.text("full_name"),
        password: form.new_password("password"),
    };
    let outcome = state
        .accounts
        .sign_up(input, &visitor.client, Some(visitor.presented))
        .await;
    let (status, view) = match outcome.map_err(messages::sign_up) {
        Ok(SignedUp {
            signed_in: Some(signed_in),
            ..
        }) => {
            return Ok(session::signed_in(see_other("/welcome"), &state, signed_in));
        }
        // Created without a session: `--email-verification required` waits for the address
        // (say so on the sign-in page), or the password changed before the session opened.
        Ok(SignedUp {
            signed_in: None, ..
        }) => {
            let mut resp = see_other("/sign-in");
            if state.email_verification == crate::config::EmailVerification::Required {
                let flash =
                    session::flash_cookie(state.sessions.secure, Some(session::Flash::CheckInbox));
                let _ = resp.add_cookie(&flash);
            }
            return Ok(resp);
        }
        Err(Err(e)) => return Err(e),
        Err(Ok(SignUpReply::Invalid(errors))) => {
            let mut view = form_view(visitor.anonymous_token(&state).0);
            for (field, message) in errors {
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
        Err(Ok(SignUpReply::Taken { field, message })) => {
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
