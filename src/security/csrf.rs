//! CSRF tokens (docs/behaviour.md §6): stateless HMACs bound to a browser secret, the anonymous
//! `csrf` cookie on sign-in / sign-up forms and the session on signed-in ones, plus the `Origin`
//! check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::security::secret::SecretKey;

const ANON_LABEL: &str = "csrf:anon:";
const SESSION_LABEL: &str = "csrf:session:";

/// A new random value for the anonymous `csrf` cookie.
pub fn new_cookie_value() -> String {
    let mut bytes = [0u8; 24];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a form token is bound to.
pub enum Binding<'a> {
    /// The value of the anonymous `csrf` cookie.
    Anonymous(&'a str),
    /// The hash of the session id (the id itself never leaves the cookie jar).
    Session(&'a [u8; 32]),
}

pub fn token(key: &SecretKey, binding: &Binding<'_>) -> String {
    let tag = match binding {
        Binding::Anonymous(v) => key.mac(ANON_LABEL, v.as_bytes()),
        Binding::Session(h) => key.mac(SESSION_LABEL, &h[..]),
    };
    URL_SAFE_NO_PAD.encode(tag)
}

/// True when `submitted` matches the token of any of the request's bindings.
pub fn verify(key: &SecretKey, submitted: &str, bindings: &[Binding<'_>]) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(submitted) else {
        return false;
    };
    bindings.iter().any(|b| match b {
        Binding::Anonymous(v) => !v.is_empty() && key.verify(ANON_LABEL, v.as_bytes(), &tag),
        Binding::Session(h) => key.verify(SESSION_LABEL, &h[..], &tag),
    })
}

/// The `Origin` rule: no header is fine; `null` or another origin is refused. Compared
/// ASCII-case-insensitively, with default ports normalised away.
pub fn origin_allowed(origin: Option<&str>, site_origin: &str) -> bool {
    match origin {
        None => true,
        Some(o) => normalise_origin(o) == normalise_origin(site_origin),
    }
}

fn normalise_origin(o: &str) -> String {
    let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
    if let Some(rest) = o.strip_suffix(":80").filter(|_| o.starts_with("http://")) {
        return rest.to_owned();
    }
    if let Some(rest) = o.strip_suffix(":443").filter(|_| o.starts_with("https://")) {
        return rest.to_owned();
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[9u8; 32]).unwrap()
    }

    #[test]
    fn anonymous_token_is_bound_to_its_cookie() {
        let k = key();
        let c = new_cookie_value();
        let t = token(&k, &Binding::Anonymous(&c));
        assert!(verify(&k, &t, &[Binding::Anonymous(&c)]));
        let other = new_cookie_value();
        assert!(
            !verify(&k, &t, &[Binding::Anonymous(&other)]),
            "mismatched cookie"
        );
        assert!(!verify(&k, &t, &[]), "no cookie");
        assert!(!verify(&k, "", &[Binding::Anonymous(&c)]));
        assert!(!verify(&k, "not base64!", &[Binding::Anonymous(&c)]));
        assert!(!verify(&k, &t[..t.len() - 2], &[Binding::Anonymous(&c)]));
        let empty = token(&k, &Binding::Anonymous(""));
        assert!(
            !verify(&k, &empty, &[Binding::Anonymous("")]),
            "empty cookie never binds"
        );
    }

    #[test]
    fn session_token_is_bound_to_the_session() {
        let k = key();
        let (h1, h2) = ([1u8; 32], [2u8; 32]);
        let t = token(&k, &Binding::Session(&h1));
        assert!(verify(&k, &t, &[Binding::Session(&h1)]));
        assert!(!verify(&k, &t, &[Binding::Session(&h2)]));
        // An anonymous token is not a session token for bytes that happen to match.
        let s = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
        let anon = token(&k, &Binding::Anonymous(s));
        assert!(!verify(&k, &anon, &[Binding::Session(&h1)]));
        // Another key's token.
        let k2 = SecretKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(!verify(&k2, &t, &[Binding::Session(&h1)]));
    }

    #[test]
    fn origin_rules() {
        let site = "http://127.0.0.1:8080";
        assert!(origin_allowed(None, site));
        assert!(origin_allowed(Some("http://127.0.0.1:8080"), site));
        assert!(origin_allowed(Some("HTTP://127.0.0.1:8080"), site));
        assert!(!origin_allowed(Some("null"), site));
        assert!(!origin_allowed(Some("http://evil.example"), site));
        assert!(!origin_allowed(Some("http://127.0.0.1:8081"), site));
        assert!(!origin_allowed(Some("https://127.0.0.1:8080"), site));
        assert!(!origin_allowed(Some(""), site));
        assert!(origin_allowed(
            Some("https://example.com"),
            "https://example.com:443"
        ));
        assert!(origin_allowed(
            Some("http://example.com:80"),
            "http://example.com"
        ));
    }
}
