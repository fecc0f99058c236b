//! The security rules, free of HTTP and storage: the password digest and its KDF, the fail-lock
//! and the per-address throttle, signed redirects, CSRF tokens, session and device tokens, and
//! the secret key they are all derived from.

pub mod csrf;
pub mod device;
pub mod digest;
pub mod faillock;
pub mod forward;
pub mod limits;
pub mod passkey;
pub mod password;
pub mod protected_path;
pub mod recovery;
pub mod redirect;
pub mod return_to;
pub mod seal;
pub mod secret;
pub mod session;
pub mod throttle;
pub mod ticket;
pub mod token;
pub mod totp;
pub mod totp_seal;
