//! One-time link tokens (docs/behaviour.md §11): a password-reset or email-verification link
//! carries 32 random bytes, base64url; the database holds only their SHA-256, so a copy of it
//! opens nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a link token is for; each purpose has its own rules (lifetime, superseding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Reset,
    Verify,
}

impl Purpose {
    /// The stored name (the schema's `CHECK` lists them).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Verify => "verify",
        }
    }
}

/// A token as a link carries it: exactly 43 base64url characters (32 bytes, unpadded).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken(Zeroizing<String>);

impl LinkToken {
    const BYTES: usize = 32;
    const CHARS: usize = 43;

    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; Self::BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }

    /// A token from a link's path segment; anything else (another length, another alphabet,
    /// padding, a non-canonical last character) is `None`, answered like an unknown token.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != Self::CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == Self::BYTES && URL_SAFE_NO_PAD.encode(&bytes) == raw)
            .then(|| Self(Zeroizing::new(raw.to_owned())))
    }

    /// What the database stores and looks up.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// The text for the link. Never logged.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = LinkToken::generate();
        let b = LinkToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(LinkToken::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.hash(), LinkToken::parse(a.as_str()).unwrap().hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "LinkToken(***)");
    }

    #[test]
    fn anything_else_is_no_token() {
        let good = LinkToken::generate();
        let s = good.as_str();
        for bad in [
            String::new(),
            s[..42].to_owned(),
            format!("{s}A"),
            format!("{s}="),
            s.replace(['-', '_'], "+"),
            "%2e%2e%2f".repeat(5),
            format!("{}B", "A".repeat(42)),
            "\u{0}".repeat(43),
            "é".repeat(22),
        ] {
            if bad == s {
                continue;
            }
            let parsed = LinkToken::parse(&bad);
            // A last character with stray low bits ("…AB") is not the canonical form.
            assert!(parsed.is_none(), "{bad:?}");
        }
        // The SHA-256 is of the text, as the link carries it.
        assert_eq!(
            hex::encode(good.hash()),
            hex::encode(Sha256::digest(s.as_bytes()))
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(raw in "\\PC{0,60}") {
            if let Some(t) = LinkToken::parse(&raw) {
                proptest::prop_assert_eq!(t.as_str(), raw.as_str());
            }
        }
    }
}
