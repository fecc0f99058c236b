//! Validated domain types: a value of one of these types has passed its rules, so code that
//! holds one never re-checks it ("parse, don't validate").

mod email;
mod full_name;
mod password;
mod username;

pub use email::Email;
pub use full_name::FullName;
pub use password::{PlainPassword, canonical_password};
pub use username::{Username, canonical_username};
