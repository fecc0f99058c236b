//! `Cookie` header parsing on any string: never panics, and a session id found there prints
//! back (as `cookie_value`) to a value that parses to the same id.
#![no_main]

use gatehouse::security::session::{self, SessionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    if let Some(id) = session::session_from_header(header, "session") {
        let value = id.cookie_value();
        assert_eq!(value.len(), 36);
        assert_eq!(SessionId::parse(&value), Some(id.clone()), "{value:?}");
        assert_eq!(
            session::session_from_header(&format!("session={value}"), "session"),
            Some(id)
        );
    }
    if let Some(v) = session::cookie_value(header, "csrf") {
        // Whatever is returned is a slice of (or decoded from) the header, never longer.
        assert!(v.len() <= header.len(), "{v:?} from {header:?}");
    }
});
