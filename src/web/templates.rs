//! Askama page types. Every page shares [`Chrome`] (title, who is signed in, asset URLs), and
//! every form is a [`FormView`] rendered by `templates/form.html`, so fields look and behave the
//! same everywhere (labels, hints, messages, `aria-*`, focus on the first bad field).

use askama::Template;

use crate::store::User;
use crate::web::assets;

/// What the layout needs on every page.
pub struct Chrome {
    pub title: &'static str,
    /// The signed-in user's display name for the header.
    pub who: Option<String>,
    pub wide: bool,
    /// `<meta name="description">`: what the page is for, in a sentence.
    pub description: &'static str,
    /// Ask search engines not to index this page (`<meta name="robots" content="noindex">`).
    pub noindex: bool,
    pub css_url: &'static str,
    pub js_url: &'static str,
    /// The passkey script, linked only by the pages that offer passkeys (sign-in, account).
    pub passkeys_js_url: &'static str,
    pub icon_url: &'static str,
    /// Whether to link to the sign-up page (`--sign-up open`).
    pub sign_up: bool,
}

impl Chrome {
    /// `sign_up` is the site's `--sign-up` setting (from the app state), passed
    /// in rather than read from a global.
    pub fn new(title: &'static str, who: Option<&User>, sign_up: bool) -> Self {
        Self {
            title,
            who: who.map(|u| u.username.clone()),
            wide: false,
            description: description(title),
            noindex: false,
            css_url: assets::url("style.css"),
            js_url: assets::url("gatehouse.js"),
            passkeys_js_url: assets::url("passkeys.js"),
            icon_url: assets::url("favicon.svg"),
            sign_up,
        }
    }
}

/// The description of the page titled `title`; pages are few, and the title names each.
fn description(title: &str) -> &'static str {
    match title {
        "Sign in" => "Sign in to your account on this Gatehouse site.",
        "Create account" => {
            "Create an account on this Gatehouse site: choose a username and a password."
        }
        "Account" => "Your account: details, password, where you are signed in, recent sign-ins.",
        "Welcome" => "You are signed in to this Gatehouse site.",
        "Sign out" => "Sign out of this Gatehouse site on this browser.",
        _ => "Gatehouse: sign up and sign in to this site.",
    }
}

/// One input of a form.
#[derive(Clone, Debug, Default)]
pub struct Field {
    pub name: &'static str,
    pub id: &'static str,
    pub label: &'static str,
    pub input_type: &'static str,
    pub autocomplete: &'static str,
    pub hint: &'static str,
    pub required: bool,
    /// Kept input on re-render; always empty for passwords.
    pub value: String,
    pub error: Option<String>,
    pub autofocus: bool,
    pub digest_target: &'static str,
    pub repeat_of: &'static str,
    pub check_length: bool,
    /// Shown and posted, not editable (the username on a reset page).
    pub readonly: bool,
}

impl Field {
    pub fn text(name: &'static str, label: &'static str, autocomplete: &'static str) -> Self {
        Self {
            name,
            id: name,
            label,
            input_type: "text",
            autocomplete,
            required: true,
            ..Self::default()
        }
    }

    pub fn password(name: &'static str, label: &'static str, autocomplete: &'static str) -> Self {
        Self {
            input_type: "password",
            ..Self::text(name, label, autocomplete)
        }
    }

    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn readonly(mut self) -> Self {
        self.readonly = true;
        self
    }

    pub fn kind(mut self, input_type: &'static str) -> Self {
        self.input_type = input_type;
        self
    }

    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    pub fn digest_into(mut self, target: &'static str) -> Self {
        self.digest_target = target;
        self
    }

    pub fn repeat_of(mut self, id: &'static str) -> Self {
        self.repeat_of = id;
        self
    }

    pub fn checked_length(mut self) -> Self {
        self.check_length = true;
        self
    }

    pub fn value(mut self, v: &str) -> Self {
        self.value = v.to_owned();
        self
    }

    pub fn error_text(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }
}

/// A whole form: fields, hidden inputs, submit label.
#[derive(Clone, Debug, Default)]
pub struct FormView {
    pub action: String,
    pub digest: bool,
    pub data_username: Option<String>,
    pub fields: Vec<Field>,
    pub hidden: Vec<(&'static str, String)>,
    pub submit: &'static str,
}

impl FormView {
    /// Sets the message of field `name` (the first message wins).
    pub fn set_error(&mut self, name: &str, message: impl Into<String>) {
        if let Some(f) = self.fields.iter_mut().find(|f| f.name == name) {
            f.error.get_or_insert_with(|| message.into());
        }
        self.focus_first_error();
    }

    fn focus_first_error(&mut self) {
        let mut seen = false;
        for f in &mut self.fields {
            f.autofocus = !seen && f.error.is_some();
            seen |= f.error.is_some();
        }
    }

    pub fn set_value(&mut self, name: &str, value: &str) {
        if let Some(f) = self
            .fields
            .iter_mut()
            .find(|f| f.name == name && f.input_type != "password")
        {
            f.value = value.to_owned();
        }
    }

    /// Whether the page's script checks `f` against the username rule (docs/behaviour.md §2) before
    /// sending: a username typed next to a new password is being chosen (sign-up); sign-in
    /// applies no format rule.
    pub fn checks_username(&self, f: &Field) -> bool {
        f.name == "username"
            && self
                .fields
                .iter()
                .any(|other| other.autocomplete == "new-password")
    }

    pub fn errors(&self) -> Vec<&Field> {
        self.fields.iter().filter(|f| f.error.is_some()).collect()
    }

    pub fn has_errors(&self) -> bool {
        self.fields.iter().any(|f| f.error.is_some())
    }
}

#[derive(Template)]
#[template(path = "sign_up.html")]
pub struct SignUpPage {
    pub chrome: Chrome,
    pub form: FormView,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub form: FormView,
    pub notice: String,
    /// `error` or `info`, for styling.
    pub notice_kind: &'static str,
}

#[derive(Template)]
#[template(path = "welcome.html")]
pub struct WelcomePage {
    pub chrome: Chrome,
    pub name: String,
}

pub struct SessionRow {
    pub id: i64,
    /// RFC 3339, for `datetime`; `*_text` is for people.
    pub created: String,
    pub created_text: String,
    pub last_seen: String,
    pub last_seen_text: String,
    /// "Chrome 156 on Linux"; the full user agent goes in a tooltip.
    pub browser: String,
    pub user_agent: String,
    pub ip: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub chrome: Chrome,
    pub user: User,
    pub created: String,
    pub created_text: String,
    pub notice: String,
    pub form: FormView,
    /// Editing the full name and email.
    pub profile_form: FormView,
    /// Deleting the account (at the end of the page).
    pub delete_form: FormView,
    /// Whether `user.email` is confirmed, and a new address waiting for confirmation.
    pub email_verified: bool,
    pub pending_email: Option<String>,
    /// Whether this site sends mail (a resend button only then).
    pub mail_on: bool,
    pub sessions: Vec<SessionRow>,
    pub csrf_token: String,
    /// The latest successful sign-ins, newest first.
    pub sign_ins: Vec<ActivityRow>,
    /// Failed or locked-out attempts on this username since the sign-in before the latest.
    pub failed_since_previous: i64,
    /// When that previous sign-in was, for people.
    pub previous_sign_in: Option<String>,
    /// "Two-step sign-in" (§13.1).
    pub two_step: TwoStepSection,
    /// The user's passkeys, oldest first (docs/behaviour.md §13.2).
    pub passkeys: Vec<PasskeyRow>,
}

/// The "Two-step sign-in" section of `/account` (§13.1).
pub struct TwoStepSection {
    pub on: bool,
    /// Unused recovery codes.
    pub recovery_left: i64,
    /// A set-up waiting for its confirming code.
    pub setup: Option<SetUpView>,
    /// Recovery codes shown once, just after they were made.
    pub new_codes: Vec<String>,
    pub notice: String,
    pub start_form: FormView,
    pub confirm_form: FormView,
    pub renew_form: FormView,
    pub off_form: FormView,
}

/// What an authenticator app needs: the secret typed or scanned.
pub struct SetUpView {
    /// Base32 without padding.
    pub secret: String,
    pub otpauth_uri: String,
    /// An inline `<svg>` of the URI's QR code, made here from the URI (no user text in it).
    pub qr_svg: String,
}

/// A passkey on `/account`.
pub struct PasskeyRow {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub created_text: String,
    /// "never" when unused.
    pub last_used: String,
    pub last_used_text: String,
}

/// A past sign-in on `/account`.
pub struct ActivityRow {
    pub at: String,
    pub at_text: String,
    pub ip: String,
    pub browser: String,
    pub user_agent: String,
}

#[derive(Template)]
#[template(path = "sign_out.html")]
pub struct SignOutPage {
    pub chrome: Chrome,
    pub csrf_token: String,
}

/// A page of one message and at most one form: the password-reset pages, the email
/// confirmation, and their "this link is no longer valid" answers.
#[derive(Template)]
#[template(path = "simple.html")]
pub struct SimplePage {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub lede: String,
    pub notice: String,
    /// `error` or `info`, for styling.
    pub notice_kind: &'static str,
    pub form: Option<FormView>,
    pub link_href: &'static str,
    pub link_text: &'static str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub message: String,
    pub link_href: &'static str,
    pub link_text: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> FormView {
        FormView {
            action: "/x".into(),
            digest: true,
            fields: vec![
                Field::text("username", "Username", "username").value("<b>x</b>\"'"),
                Field::password("password", "Password", "new-password")
                    .digest_into("password_digest"),
            ],
            hidden: vec![("csrf_token", "t\"<".into())],
            submit: "Go",
            ..FormView::default()
        }
    }

    #[test]
    fn escapes_everything_echoed() {
        let mut f = form();
        f.set_error("username", "<script>alert(1)</script>");
        let html = SignUpPage {
            chrome: Chrome::new("T", None, true),
            form: f,
        }
        .render()
        .unwrap();
        assert!(!html.contains("<b>x</b>"));
        assert!(!html.contains("<script>alert"));
        assert!(
            html.contains("&#60;b&#62;x&#60;/b&#62;") || html.contains("&lt;b&gt;x&lt;/b&gt;"),
            "{html}"
        );
        assert!(!html.contains("value=\"t\"<\""));
    }

    #[test]
    fn first_bad_field_gets_focus_and_aria() {
        let mut f = form();
        f.set_error("password", "bad");
        f.set_error("username", "bad too");
        assert!(f.fields[0].autofocus && !f.fields[1].autofocus);
        let html = SignUpPage {
            chrome: Chrome::new("T", None, true),
            form: f,
        }
        .render()
        .unwrap();
        assert_eq!(html.matches("aria-invalid=\"true\"").count(), 2);
        assert_eq!(html.matches(" autofocus").count(), 1);
        assert!(html.contains("<label for=\"username\">"));
        assert!(html.contains("data-digest-target=\"password_digest\""));
        assert!(!html.contains("style="), "CSP: no inline style");
        assert!(!html.contains("<script>"), "CSP: no inline script");
    }

    #[test]
    fn password_values_are_never_kept() {
        let mut f = form();
        f.set_value("password", "secret-typed");
        let html = SignUpPage {
            chrome: Chrome::new("T", None, true),
            form: f,
        }
        .render()
        .unwrap();
        assert!(!html.contains("secret-typed"));
    }
}
