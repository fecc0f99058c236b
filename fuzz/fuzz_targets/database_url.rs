//! `--database postgres://…` on any string: never panics, and what is printed of it (messages
//! and logs use `redact`) never depends on the password it carries.
#![no_main]

use gatehouse::store::postgres::{PgOptions, describe, is_url, parse_url, redact};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let _ = is_url(raw);
    let shown = redact(raw);
    if let Ok((config, _tls, display)) = parse_url(raw, &PgOptions::default()) {
        assert_eq!(display, shown);
        // What is shown does not depend on the password (only on whether there is one).
        if config.get_password().is_some() {
            let mut other = config.clone();
            other.password("a-different-password-entirely");
            assert_eq!(describe(&config), describe(&other), "{raw:?}");
        }
    }
});
