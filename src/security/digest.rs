//! The password digest both browser and server compute (docs/behaviour.md §2):
//! `SHA-512(canonical username ‖ NFKC(password))`, sent as 88 characters of padded base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use crate::domain::{PlainPassword, canonical_password, canonical_username};

/// The 64 raw digest bytes. They are a password equivalent: never stored, logged or printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordDigest([u8; 64]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("password_digest must be 88 characters of standard base64 (64 bytes)")]
pub struct InvalidDigest;

/// A typed password too long to be valid, refused before normalising.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the password is longer than any valid one")]
pub struct TooLong;

impl PasswordDigest {
    pub const WIRE_LEN: usize = 88;

    /// Computes the digest from what a person typed, applying both canonicalisations. For
    /// trusted or already bounded input (admin commands); requests use [`Self::from_typed`].
    pub fn compute(typed_username: &str, typed_password: &str) -> Self {
        let mut password = canonical_password(typed_password);
        let digest = Self::of_canonical(typed_username, &password);
        password.zeroize();
        digest
    }

    /// [`Self::compute`] for a password from a request: one longer than any valid password
    /// is refused before NFKC runs on it (see [`PlainPassword::MAX_TYPED_BYTES`]).
    pub fn from_typed(typed_username: &str, typed_password: &str) -> Result<Self, TooLong> {
        if PlainPassword::fits_before_normalising(typed_password) {
            Ok(Self::compute(typed_username, typed_password))
        } else {
            Err(TooLong)
        }
    }

    /// The digest of a password already parsed (and so normalised) as a [`PlainPassword`].
    pub fn from_plain(typed_username: &str, password: &PlainPassword) -> Self {
        Self::of_canonical(typed_username, password.as_str())
    }

    fn of_canonical(typed_username: &str, normalised_password: &str) -> Self {
        let mut hasher = Sha512::new();
        hasher.update(canonical_username(typed_username).as_bytes());
        hasher.update(normalised_password.as_bytes());
        Self(hasher.finalize().into())
    }

    /// A random digest no password produces (one in 2^512): checked in place of a refused
    /// password, so the refusal costs the same KDF work as a wrong one.
    pub fn unguessable() -> Self {
        let mut bytes = [0u8; 64];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Self(bytes)
    }

    /// Parses the wire form strictly: exactly 88 characters of standard padded base64.
    pub fn from_wire(s: &str) -> Result<Self, InvalidDigest> {
        if s.len() != Self::WIRE_LEN {
            return Err(InvalidDigest);
        }
        let bytes = STANDARD.decode(s).map_err(|_| InvalidDigest)?;
        let arr: [u8; 64] = bytes.try_into().map_err(|_| InvalidDigest)?;
        Ok(Self(arr))
    }

    pub fn to_wire(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl Drop for PasswordDigest {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordDigest(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// docs/behaviour.md §2 test vectors.
    const VECTORS: &[(&str, &str, &str)] = &[
        (
            "alice",
            "correct horse battery staple",
            "qfHFJMsdCQvQ1SBaXfnadH82UaLiL6vuRP1Pc3S1eotaTmbLir/Tklt5LD8FtCL71N2LTzfdtyr7oZmONwduEQ==",
        ),
        (
            "Bob_42 ",
            "hunter2hunter2",
            "ABTpI6gYVn4M5bVqaNgMpvMVY3u9zxcqaRLFLhvuoxskGLSKzkmCHzi4VjJ5eLEaT4NMGVPc2AJaJH3TkblIIQ==",
        ),
        (
            "zoe",
            "pa\u{0308}ssw\u{00f6}rd \u{fb01} \u{1f511}",
            "mh3cibthvry4Wbz5wehkI7sJnafVWUxonPL3DQi79CatdwVsRmYsb6d5RxNzWiLgRQ/DP8WcEKmng+LTQIgUeg==",
        ),
    ];

    #[test]
    fn spec_vectors() {
        for (u, p, want) in VECTORS {
            assert_eq!(PasswordDigest::compute(u, p).to_wire(), *want, "{u}");
            assert_eq!(PasswordDigest::from_wire(want).unwrap().to_wire(), *want);
        }
    }

    #[test]
    fn typed_passwords_are_bounded_before_normalising() {
        let bound = PlainPassword::MAX_TYPED_BYTES;
        let at = "x".repeat(bound);
        assert_eq!(
            PasswordDigest::from_typed("alice", &at),
            Ok(PasswordDigest::compute("alice", &at))
        );
        assert_eq!(
            PasswordDigest::from_typed("alice", &"x".repeat(bound + 1)),
            Err(TooLong)
        );
        // Parsed and typed agree: the parsed form is not normalised twice differently.
        let zoe = VECTORS[2];
        let parsed = PlainPassword::parse(zoe.1).unwrap();
        assert_eq!(PasswordDigest::from_plain(zoe.0, &parsed).to_wire(), zoe.2);
        assert_eq!(
            PasswordDigest::from_typed(zoe.0, zoe.1).unwrap().to_wire(),
            zoe.2
        );
        assert_ne!(PasswordDigest::unguessable(), PasswordDigest::unguessable());
    }

    #[test]
    fn rejects_malformed_wire_forms() {
        let good = VECTORS[0].2;
        let cases = [
            String::new(),
            good[..87].to_owned(),
            format!("{good}="),
            good.trim_end_matches('=').to_owned(),
            good.replace('/', "_"),
            good.replace(['+', '/'], "-"),
            format!(" {}", &good[1..]),
            "=".repeat(88),
            "A".repeat(88),
            format!("{}é", &good[..86]),
            // 88 chars but decodes to 65 bytes is impossible; 66 bytes of data needs 88 too:
            format!("{}AA", &good[..86]),
        ];
        for c in cases {
            assert_eq!(PasswordDigest::from_wire(&c), Err(InvalidDigest), "{c:?}");
        }
    }

    #[test]
    fn debug_hides_bytes() {
        assert_eq!(
            format!("{:?}", PasswordDigest::compute("a", "b")),
            "PasswordDigest(***)"
        );
    }

    proptest! {
        #[test]
        fn wire_round_trip(bytes in proptest::array::uniform32(any::<u8>()), more in proptest::array::uniform32(any::<u8>())) {
            let mut all = [0u8; 64];
            all[..32].copy_from_slice(&bytes);
            all[32..].copy_from_slice(&more);
            let d = PasswordDigest(all);
            prop_assert_eq!(PasswordDigest::from_wire(&d.to_wire()).unwrap(), d);
        }

        #[test]
        fn from_wire_never_panics(s in "\\PC{0,100}") {
            let _ = PasswordDigest::from_wire(&s);
        }
    }
}
