//! `PasswordDigest::from_wire` on any string: never panics, and whatever it accepts is the
//! canonical wire form (`to_wire` gives back exactly the input).
#![no_main]

use gatehouse::security::digest::PasswordDigest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    if let Ok(d) = PasswordDigest::from_wire(s) {
        assert_eq!(s.len(), PasswordDigest::WIRE_LEN);
        assert_eq!(d.to_wire(), s, "accepted a non-canonical wire form");
        assert_eq!(d.as_bytes().len(), 64);
    }
});
