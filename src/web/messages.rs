//! The account outcomes in words: what [`crate::accounts`] reports as typed values becomes
//! here the statuses, `Retry-After`s and sentences of the pages and the JSON API, in one place
//! (docs/design.md, "Service layer").

use std::time::Duration;

use crate::accounts::{
    ChangeError, CodeError, ConfirmError, FieldErrors, Problem, Refused, SignInError, SignUpError,
    TwoStepError,
};
use crate::security::limits::UNAVAILABLE_RETRY;
use crate::store::Taken;
use crate::web::error::{AppError, retry_after_secs};

/// A field problem's sentence.
pub fn field(problem: Problem) -> String {
    match problem {
        Problem::Rejected(message) => message,
        Problem::MissingPassword => "Enter a password.".into(),
        Problem::MissingCurrentPassword => "Enter your current password.".into(),
        Problem::PasswordsDiffer => "The passwords do not match.".into(),
    }
}

/// Field problems as (field, sentence), in the order found.
pub fn fields(errors: FieldErrors) -> Vec<(&'static str, String)> {
    errors.0.into_iter().map(|(f, p)| (f, field(p))).collect()
}

/// The field a taken value belongs to, and what it says there.
pub fn taken(t: Taken) -> (&'static str, &'static str) {
    match t {
        Taken::Username => ("username", "This username is taken. Please choose another."),
        Taken::Email => ("email", "An account with this email already exists."),
    }
}

impl From<Refused> for AppError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Throttled { retry_after } => AppError::TooManyRequests {
                retry_after,
                message: format!(
                    "Too many attempts from your network. Try again in {} seconds.",
                    retry_after_secs(retry_after)
                ),
            },
            Refused::Full { retry_after } => AppError::Unavailable {
                retry_after,
                message: "Too many clients are being tracked right now. Please try again later.",
            },
            Refused::Unavailable(_) => AppError::Unavailable {
                retry_after: UNAVAILABLE_RETRY,
                message: "Please try again later.",
            },
        }
    }
}

/// A refused sign-up the form (or the API body) answers itself; the rest are errors.
pub enum SignUpReply {
    /// 400, with each field's sentence.
    Invalid(Vec<(&'static str, String)>),
    /// 409 at `field`.
    Taken {
        field: &'static str,
        message: &'static str,
    },
}

pub fn sign_up(e: SignUpError) -> Result<SignUpReply, AppError> {
    match e {
        SignUpError::Invalid(errors) => Ok(SignUpReply::Invalid(fields(errors))),
        SignUpError::Taken(t) => {
            let (field, message) = taken(t);
            Ok(SignUpReply::Taken { field, message })
        }
        SignUpError::Refused(r) => Err(r.into()),
        SignUpError::Kdf(e) => Err(e.into()),
        SignUpError::Store(e) => Err(e.into()),
    }
}

/// A refused sign-in the form (or the API body) answers itself; the rest are errors.
pub enum SignInReply {
    /// 401 with [`crate::web::respond::GENERIC_FAILURE`].
    Failed,
    /// 429 with `Retry-After` and the lock-out message.
    Locked(Duration),
    /// 400 with the digest format's reason.
    BadDigest(String),
    /// Right password, codes on: 303 to `/sign-in/code` (the page) or 401 `code_required`
    /// (the API).
    CodeRequired(crate::accounts::PasswordPassed),
    /// 403: right password, address not confirmed yet (`--email-verification required`).
    Unverified {
        user_id: i64,
        username: String,
        email: Option<String>,
    },
}

pub fn sign_in(e: SignInError) -> Result<SignInReply, AppError> {
    match e {
        SignInError::Failed => Ok(SignInReply::Failed),
        SignInError::Locked { retry_after } => Ok(SignInReply::Locked(retry_after)),
        SignInError::BadDigest(msg) => Ok(SignInReply::BadDigest(msg)),
        SignInError::CodeRequired(passed) => Ok(SignInReply::CodeRequired(passed)),
        SignInError::EmailUnverified {
            user_id,
            username,
            email,
        } => Ok(SignInReply::Unverified {
            user_id,
            username,
            email,
        }),
        SignInError::Full { retry_after } => Err(AppError::Unavailable {
            retry_after,
            message: "Too many failed sign-ins are being tracked right now. Please try again later.",
        }),
        SignInError::Refused(r) => Err(r.into()),
        SignInError::Kdf(e) => Err(e.into()),
        SignInError::Store(e) => Err(e.into()),
    }
}

/// A refused password change the account page answers itself; the rest are errors.
pub enum ChangeReply {
    /// 429 with `Retry-After`, the message at the current password.
    Locked(Duration),
    /// 401, the message at the current password.
    WrongPassword,
    /// 400, with each field's sentence.
    Invalid(Vec<(&'static str, String)>),
}

pub fn change_password(e: ChangeError) -> Result<ChangeReply, AppError> {
    match e {
        ChangeError::Locked { retry_after } => Ok(ChangeReply::Locked(retry_after)),
        ChangeError::WrongPassword => Ok(ChangeReply::WrongPassword),
        ChangeError::Invalid(errors) => Ok(ChangeReply::Invalid(fields(errors))),
        ChangeError::Full { retry_after } => Err(AppError::Unavailable {
            retry_after,
            message: "Please try again later.",
        }),
        ChangeError::NoSuchUser => Err(AppError::Unauthorized),
        ChangeError::ChangedElsewhere => Err(AppError::Conflict(
            "Your password was changed elsewhere just now. Sign in again.",
        )),
        ChangeError::BadStoredName => Err(AppError::Internal("stored username invalid".into())),
        ChangeError::Refused(r) => Err(r.into()),
        ChangeError::Kdf(e) => Err(e.into()),
        ChangeError::Store(e) => Err(e.into()),
    }
}

/// A refused confirmation of the current password (deleting the account, changing the
/// email), answered like a refused password change.
pub fn confirm(e: ConfirmError) -> Result<ChangeReply, AppError> {
    match e {
        ConfirmError::Locked { retry_after } => Ok(ChangeReply::Locked(retry_after)),
        ConfirmError::WrongPassword => Ok(ChangeReply::WrongPassword),
        ConfirmError::Invalid(errors) => Ok(ChangeReply::Invalid(fields(errors))),
        ConfirmError::Full { retry_after } => Err(AppError::Unavailable {
            retry_after,
            message: "Please try again later.",
        }),
        ConfirmError::NoSuchUser => Err(AppError::Unauthorized),
        ConfirmError::BadStoredName => Err(AppError::Internal("stored username invalid".into())),
        ConfirmError::Refused(r) => Err(r.into()),
        ConfirmError::Kdf(e) => Err(e.into()),
        ConfirmError::Store(e) => Err(e.into()),
    }
}

/// A refused code step the code form (or the API) answers itself; the rest are errors.
pub enum CodeReply {
    /// No live pending sign-in: sign in again.
    Expired,
    /// 400: no code typed.
    Missing,
    /// 401: wrong or used code.
    Wrong,
    /// 429 with `Retry-After`.
    Locked(Duration),
}

pub fn code(e: CodeError) -> Result<CodeReply, AppError> {
    match e {
        CodeError::Expired => Ok(CodeReply::Expired),
        CodeError::MissingCode => Ok(CodeReply::Missing),
        CodeError::WrongCode => Ok(CodeReply::Wrong),
        CodeError::Locked { retry_after } => Ok(CodeReply::Locked(retry_after)),
        CodeError::Full { retry_after } => Err(AppError::Unavailable {
            retry_after,
            message: "Too many failed sign-ins are being tracked right now. Please try again later.",
        }),
        CodeError::Unsealable => Err(AppError::Internal(
            "a stored TOTP secret does not open with the site key".into(),
        )),
        CodeError::Refused(r) => Err(r.into()),
        CodeError::Store(e) => Err(e.into()),
    }
}

/// A refused change on the account page's two-step section.
pub enum TwoStepReply {
    /// The current password was refused: as for a password change.
    Password(ChangeReply),
    /// 400: no code typed.
    MissingCode,
    /// 400 (confirming) or 401 (turning off): wrong or used code.
    WrongCode,
    /// The state moved on (already on, already off, set-up replaced): 303 to `/account`.
    Stale,
}

pub fn two_step(e: TwoStepError) -> Result<TwoStepReply, AppError> {
    match e {
        TwoStepError::Confirm(e) => confirm(e).map(TwoStepReply::Password),
        TwoStepError::MissingCode => Ok(TwoStepReply::MissingCode),
        TwoStepError::WrongCode => Ok(TwoStepReply::WrongCode),
        TwoStepError::AlreadyOn | TwoStepError::NotOn | TwoStepError::NoSetUp => {
            Ok(TwoStepReply::Stale)
        }
        TwoStepError::Unsealable => Err(AppError::Internal(
            "a stored TOTP secret does not open with the site key".into(),
        )),
        TwoStepError::Store(e) => Err(e.into()),
    }
}

/// The code form's sentences.
pub const WRONG_CODE: &str =
    "That code is not right, or it was already used. Try the next code from your app.";
pub const MISSING_CODE: &str = "Enter the 6-digit code from your app, or a recovery code.";
pub const SIGN_IN_EXPIRED: &str = "Your sign-in timed out or ended. Please sign in again.";

/// The current password's sentence when it was wrong.
pub const WRONG_CURRENT_PASSWORD: &str = "Your current password is incorrect.";

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;

    #[test]
    fn refusals_keep_their_status_and_wording() {
        let throttled = AppError::from(Refused::Throttled {
            retry_after: Duration::from_millis(1_500),
        });
        assert_eq!(throttled.status_code(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            throttled.to_string(),
            "Too many attempts from your network. Try again in 2 seconds."
        );
        let full = sign_in(SignInError::Full {
            retry_after: Duration::from_secs(3),
        })
        .err()
        .unwrap();
        assert_eq!(full.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            full.to_string(),
            "Too many failed sign-ins are being tracked right now. Please try again later."
        );
        assert_eq!(
            taken(Taken::Username),
            ("username", "This username is taken. Please choose another.")
        );
        assert_eq!(
            field(Problem::PasswordsDiffer),
            "The passwords do not match."
        );
    }
}
