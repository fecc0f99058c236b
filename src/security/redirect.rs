//! Signed redirects (docs/behaviour.md §5): `next` is followed only when it is a local path and
//! `sig` is the HMAC of `"redirect:" + next`; anything else falls back to `/welcome`, silently.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::security::secret::SecretKey;

const LABEL: &str = "redirect:";
pub const DEFAULT_TARGET: &str = "/welcome";

/// A same-site path safe to put in `Location`: starts with one `/`, no scheme or authority,
/// no backslash right after the slash, no control characters, at most 2048 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPath(String);

impl LocalPath {
    pub const MAX_BYTES: usize = 2048;

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() <= Self::MAX_BYTES
            && s.starts_with('/')
            && !s.starts_with("//")
            && !s.starts_with("/\\")
            && !s.chars().any(char::is_control)
            // Browsers ignore these inside URLs, which can turn "/\t/x" into "//x".
            && !s.contains(['\u{2028}', '\u{2029}']);
        // Starting with a single "/" already rules out a scheme ("https:", "javascript:").
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path percent-encoded where a `Location` header needs it (non-ASCII, spaces,
    /// quotes); `%`, `/`, `?`, `&`, `=`, `#` keep their meaning.
    pub fn to_location(&self) -> String {
        const ENCODE: &AsciiSet = &CONTROLS
            .add(b' ')
            .add(b'"')
            .add(b'<')
            .add(b'>')
            .add(b'`')
            .add(b'{')
            .add(b'}')
            .add(b'|')
            .add(b'^')
            .add(b'\\');
        utf8_percent_encode(&self.0, ENCODE).to_string()
    }
}

pub fn sign(key: &SecretKey, next: &LocalPath) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(LABEL, next.as_str().as_bytes()))
}

/// The target to follow, if `next` is local and `sig` verifies (in constant time).
pub fn verify(key: &SecretKey, next: &str, sig: &str) -> Option<LocalPath> {
    let path = LocalPath::parse(next)?;
    let tag = URL_SAFE_NO_PAD.decode(sig).ok()?;
    key.verify(LABEL, path.as_str().as_bytes(), &tag)
        .then_some(path)
}

/// `next`/`sig` as a query string for the sign-in page, e.g. `next=%2Fwelcome&sig=…`.
pub fn sign_in_query(key: &SecretKey, next: &LocalPath) -> String {
    let sig = sign(key, next);
    form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next.as_str())
        .append_pair("sig", &sig)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[42u8; 32]).unwrap()
    }

    fn signed(next: &str) -> String {
        sign(&key(), &LocalPath::parse(next).unwrap())
    }

    #[test]
    fn local_paths() {
        for good in [
            "/",
            "/welcome",
            "/account?tab=1#x",
            "/a:b",
            "/caf\u{e9}",
            "/%2F%2Fevil",
        ] {
            assert!(LocalPath::parse(good).is_some(), "{good}");
        }
        let long_ok = format!("/{}", "a".repeat(2047));
        assert!(LocalPath::parse(&long_ok).is_some());
        let too_long = format!("/{}", "a".repeat(2048));
        assert_eq!(too_long.len(), 2049);
        for bad in [
            "",
            "welcome",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n",
            "/x\u{0}",
            "/x\u{7f}",
            "/\u{85}",
            "\\\\evil",
            " /welcome",
            "/\u{2028}",
            too_long.as_str(),
        ] {
            assert!(LocalPath::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn verifies_only_untampered_pairs() {
        let k = key();
        assert_eq!(
            verify(&k, "/account", &signed("/account"))
                .unwrap()
                .as_str(),
            "/account"
        );
        // A signature for another path, a changed path, a truncated or padded sig.
        assert!(verify(&k, "/account", &signed("/welcome")).is_none());
        assert!(verify(&k, "/account/", &signed("/account")).is_none());
        let s = signed("/account");
        assert!(verify(&k, "/account", &s[..s.len() - 1]).is_none());
        assert!(verify(&k, "/account", &format!("{s}=")).is_none());
        assert!(verify(&k, "/account", "").is_none());
        // Another key's signature.
        let other = SecretKey::from_bytes(&[1u8; 32]).unwrap();
        assert!(verify(&other, "/account", &s).is_none());
        // A signed value that is not local never verifies (it cannot even be signed).
        let tag = URL_SAFE_NO_PAD.encode(k.mac(LABEL, b"//evil.example"));
        assert!(verify(&k, "//evil.example", &tag).is_none());
        // The CSRF label cannot be replayed as a redirect signature.
        let csrf_tag = URL_SAFE_NO_PAD.encode(k.mac("csrf:", b"/account"));
        assert!(verify(&k, "/account", &csrf_tag).is_none());
    }

    #[test]
    fn location_is_percent_encoded() {
        let p = LocalPath::parse("/caf\u{e9} x?q=\"1\"").unwrap();
        assert_eq!(p.to_location(), "/caf%C3%A9%20x?q=%221%22");
        assert!(p.to_location().is_ascii());
    }

    #[test]
    fn sign_in_query_round_trips() {
        let k = key();
        let q = sign_in_query(&k, &LocalPath::parse("/welcome").unwrap());
        assert!(q.starts_with("next=%2Fwelcome&sig="));
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        assert!(verify(&k, &pairs[0].1, &pairs[1].1).is_some());
    }

    proptest! {
        #[test]
        fn verified_targets_are_always_local(next in "\\PC{0,64}|/[\\\\/:a-z\t]{0,8}") {
            let k = key();
            if let Some(p) = LocalPath::parse(&next) {
                let s = sign(&k, &p);
                let v = verify(&k, &next, &s).unwrap();
                prop_assert!(v.as_str().starts_with('/'));
                prop_assert!(!v.as_str().starts_with("//") && !v.as_str().starts_with("/\\"));
                prop_assert!(!v.as_str().chars().any(char::is_control));
                prop_assert!(v.to_location().is_ascii());
            }
        }
    }
}
