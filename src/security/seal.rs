//! Secrets at rest under the site key: XChaCha20-Poly1305 with a key derived from the site key
//! and a label of its own per use (so no two uses share a key), a random 24-byte nonce per
//! value, and associated data naming the row a value belongs to (so a value copied onto
//! another row does not open). The outbox bodies (`mail::seal`) and the TOTP secrets
//! (`security::totp_seal`) are its two users.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::security::secret::SecretKey;

const NONCE_LEN: usize = 24;

/// One use's cipher.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

/// The value did not open: another key or label, another row, or altered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unopened;

impl Sealer {
    /// The cipher for the use named `label` (e.g. `"outbox:"`).
    pub fn new(key: &SecretKey, label: &str) -> Self {
        let derived = Zeroizing::new(key.mac(label, b""));
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(*derived)),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 encrypts any length we store");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plain bytes [`Self::seal`] was given for `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Unopened> {
        if sealed.len() < NONCE_LEN {
            return Err(Unopened);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unopened)?;
        self.cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad })
            .map(Zeroizing::new)
            .map_err(|_| Unopened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8, label: &str) -> Sealer {
        Sealer::new(&SecretKey::from_bytes(&[byte; 32]).unwrap(), label)
    }

    #[test]
    fn labels_keys_and_rows_each_keep_a_value_shut() {
        let s = sealer(1, "a:");
        let sealed = s.seal(b"row 1", b"hello");
        assert_eq!(s.open(b"row 1", &sealed).unwrap().as_slice(), b"hello");
        assert_eq!(sealer(1, "b:").open(b"row 1", &sealed), Err(Unopened));
        assert_eq!(sealer(2, "a:").open(b"row 1", &sealed), Err(Unopened));
        assert_eq!(s.open(b"row 2", &sealed), Err(Unopened));
        assert_eq!(s.open(b"row 1", &sealed[..NONCE_LEN - 1]), Err(Unopened));
    }
}
