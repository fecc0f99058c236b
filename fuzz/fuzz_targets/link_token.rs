//! One-time link tokens and sign-in tickets on any string: never panics; an accepted token is
//! exactly 43 base64url characters that round-trip, and a ticket never verifies under a key
//! other than the one that signed it.
#![no_main]

use gatehouse::security::secret::SecretKey;
use gatehouse::security::ticket;
use gatehouse::security::token::LinkToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Some(t) = LinkToken::parse(raw) {
        assert_eq!(t.as_str(), raw);
        assert_eq!(raw.len(), 43);
        assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    let key = SecretKey::from_bytes(&[9u8; 32]).unwrap();
    // A fuzzed ticket is never genuine (the fuzzer does not know the key's MACs).
    assert_eq!(ticket::verify(&key, raw, 0), None, "{raw:?}");
});
