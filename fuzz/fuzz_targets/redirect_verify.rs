//! Signed redirects: the input is `next`, a 0 byte, then `sig` (no 0 byte: all of it is `next`
//! and `sig` is empty). Whatever verifies is a safe local path, and every path `LocalPath::parse`
//! accepts verifies with its own signature (and not with a signature of a changed path).
#![no_main]

use std::sync::LazyLock;

use gatehouse::security::redirect::{self, LocalPath};
use gatehouse::security::secret::SecretKey;
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<SecretKey> =
    LazyLock::new(|| SecretKey::from_bytes(&[7u8; 32]).expect("a 32-byte key"));

/// The docs/behaviour.md §5 rules for a target that may go into `Location`.
fn assert_safe(p: &LocalPath) {
    let s = p.as_str();
    assert!(s.starts_with('/'), "not rooted: {s:?}");
    assert!(!s.starts_with("//"), "scheme-relative: {s:?}");
    assert!(!s.starts_with("/\\"), "backslash authority: {s:?}");
    assert!(!s.chars().any(char::is_control), "control character: {s:?}");
    assert!(
        s.len() <= LocalPath::MAX_BYTES,
        "too long: {} bytes",
        s.len()
    );
    let location = p.to_location();
    assert!(location.is_ascii(), "non-ASCII Location: {location:?}");
}

fuzz_target!(|data: &[u8]| {
    let (next, sig) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let next = String::from_utf8_lossy(next);
    let sig = String::from_utf8_lossy(sig);
    let key = &*KEY;

    if let Some(p) = redirect::verify(key, &next, &sig) {
        assert_safe(&p);
        assert_eq!(p.as_str(), next, "verify changed the path");
    }

    if let Some(p) = LocalPath::parse(&next) {
        assert_safe(&p);
        let own = redirect::sign(key, &p);
        let v = redirect::verify(key, &next, &own).expect("a path's own signature must verify");
        assert_eq!(v, p);
        // The signature binds the path: appending a byte must break it.
        let longer = format!("{next}x");
        if LocalPath::parse(&longer).is_some() {
            assert!(
                redirect::verify(key, &longer, &own).is_none(),
                "sig not bound to path"
            );
        }
        // The query built for the sign-in page decodes back to the same pair.
        let q = redirect::sign_in_query(key, &p);
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        assert_eq!(pairs.len(), 2, "{q:?}");
        assert_eq!(
            (pairs[0].0.as_str(), pairs[0].1.as_str()),
            ("next", p.as_str())
        );
        assert_eq!(
            (pairs[1].0.as_str(), pairs[1].1.as_str()),
            ("sig", own.as_str())
        );
    }
});
