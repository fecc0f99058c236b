//! Outbox bodies encrypted at rest (docs/behaviour.md §11.1): XChaCha20-Poly1305 under a key
//! derived from the site key with its own label, a random 24-byte nonce per message, and the
//! row's `Message-ID` as associated data, so a body moved to another row does not open. A
//! database copy alone never shows a live link.

use zeroize::Zeroizing;

use crate::security::seal;
use crate::security::secret::SecretKey;

/// The label of the outbox key: no other use of the site key derives the same bytes.
const LABEL: &str = "outbox:";
#[cfg(test)]
const NONCE_LEN: usize = 24;

/// Seals and opens outbox bodies.
#[derive(Clone)]
pub struct Sealer(seal::Sealer);

/// The body did not open: another key, or altered bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the outbox body does not open with this site key")]
pub struct Unsealable;

impl Sealer {
    pub fn new(key: &SecretKey) -> Self {
        Self(seal::Sealer::new(key, LABEL))
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `message_id`.
    pub fn seal(&self, message_id: &str, plain: &[u8]) -> Vec<u8> {
        self.0.seal(message_id.as_bytes(), plain)
    }

    /// The plain bytes [`Self::seal`] was given for `message_id`.
    pub fn open(&self, message_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Unsealable> {
        self.0
            .open(message_id.as_bytes(), sealed)
            .map_err(|_| Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&SecretKey::from_bytes(&[byte; 32]).unwrap())
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let s = sealer(1);
        let plain = b"Subject: x\r\n\r\nhttps://login.example/password-reset/secret-token";
        let a = s.seal("<1@x>", plain);
        let b = s.seal("<1@x>", plain);
        assert_ne!(a, b, "a random nonce per message");
        assert_eq!(s.open("<1@x>", &a).unwrap().as_slice(), plain);
        assert_eq!(s.open("<1@x>", &b).unwrap().as_slice(), plain);
        let text = String::from_utf8_lossy(&a);
        assert!(!text.contains("secret-token"));
    }

    #[test]
    fn a_flipped_bit_fails() {
        let s = sealer(1);
        let sealed = s.seal("<1@x>", b"hello");
        for i in [0, NONCE_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(s.open("<1@x>", &bad), Err(Unsealable), "bit flipped at {i}");
        }
        assert_eq!(s.open("<1@x>", &sealed[..10]), Err(Unsealable));
    }

    #[test]
    fn another_key_or_message_id_fails() {
        let sealed = sealer(1).seal("<1@x>", b"hello");
        assert_eq!(sealer(2).open("<1@x>", &sealed), Err(Unsealable));
        assert_eq!(sealer(1).open("<2@x>", &sealed), Err(Unsealable));
    }
}
