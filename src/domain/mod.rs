//! Validated domain types: a value of one of these types has passed its rules, so code that
//! holds one never re-checks it ("parse, don't validate").

mod email;
mod full_name;
mod group_name;
mod passkey_name;
mod password;
mod username;

pub use email::{Email, email_key};
pub use full_name::FullName;
pub use group_name::GroupName;
pub use passkey_name::PasskeyName;
pub use password::{PlainPassword, canonical_password};
pub use username::{Username, canonical_username};

/// An optional text field's trimmed text, `None` when blank, else after `check` accepts it.
fn optional(
    typed: &str,
    check: impl FnOnce(&str) -> Result<(), &'static str>,
) -> Result<Option<String>, &'static str> {
    let s = typed.trim();
    if s.is_empty() {
        return Ok(None);
    }
    check(s)?;
    Ok(Some(s.to_owned()))
}
