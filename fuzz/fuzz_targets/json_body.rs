//! The JSON API body parser on any bytes: never panics, nor does choosing the password input.
#![no_main]

use gatehouse::web::routes::api;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(creds) = api::parse_body(body) {
        let both = creds.password.is_some() && creds.password_digest.is_some();
        assert_eq!(creds.password().is_err(), both);
    }
});
