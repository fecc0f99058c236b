//! TOTP secrets at rest (docs/behaviour.md §13.1): XChaCha20-Poly1305 under a key derived from
//! the site key with its own label, a random nonce per secret, and the user's id as associated
//! data, so a sealed secret copied onto another user's row does not open. A database copy
//! alone never shows a secret.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::security::secret::SecretKey;
use crate::security::totp::TotpSecret;

/// The label of the TOTP key: no other use of the site key derives the same bytes.
const LABEL: &str = "totp-secret:";
const NONCE_LEN: usize = 24;

/// Seals and opens users' TOTP secrets.
#[derive(Clone)]
pub struct TotpSealer {
    cipher: XChaCha20Poly1305,
}

/// The secret did not open: another key, another user's row, or altered bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the TOTP secret does not open with this site key")]
pub struct Unsealable;

fn aad(user_id: i64) -> [u8; 8] {
    user_id.to_be_bytes()
}

impl TotpSealer {
    pub fn new(key: &SecretKey) -> Self {
        let derived = Zeroizing::new(key.mac(LABEL, b""));
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(*derived)),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `user_id`.
    pub fn seal(&self, user_id: i64, secret: &TotpSecret) -> Vec<u8> {
        self.seal_bytes(user_id, secret.as_bytes())
    }

    fn seal_bytes(&self, user_id: i64, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad(user_id),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts a 20-byte secret");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The secret [`Self::seal`] was given for `user_id`.
    pub fn open(&self, user_id: i64, sealed: &[u8]) -> Result<TotpSecret, Unsealable> {
        let plain = self.open_bytes(user_id, sealed)?;
        TotpSecret::from_bytes(&plain).map_err(|_| Unsealable)
    }

    fn open_bytes(&self, user_id: i64, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Unsealable> {
        if sealed.len() < NONCE_LEN {
            return Err(Unsealable);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unsealable)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad(user_id),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Unsealable)
    }

    /// `gatehouse key rotate`: `sealed` opened with this key and sealed again with `to`;
    /// `None` when it does not open.
    pub fn reseal(&self, to: &TotpSealer, user_id: i64, sealed: &[u8]) -> Option<Vec<u8>> {
        let plain = self.open_bytes(user_id, sealed).ok()?;
        Some(to.seal_bytes(user_id, &plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> TotpSealer {
        TotpSealer::new(&SecretKey::from_bytes(&[byte; 32]).unwrap())
    }

    #[test]
    fn round_trip_bound_to_user_and_key() {
        let secret = TotpSecret::generate();
        let s = sealer(1);
        let a = s.seal(7, &secret);
        assert_ne!(a, s.seal(7, &secret), "a fresh nonce each time");
        assert_eq!(s.open(7, &a).unwrap().as_bytes(), secret.as_bytes());
        assert_eq!(s.open(8, &a).err(), Some(Unsealable), "another user's row");
        assert_eq!(sealer(2).open(7, &a).err(), Some(Unsealable), "another key");
        let mut bad = a.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(s.open(7, &bad).err(), Some(Unsealable));
        assert_eq!(s.open(7, &a[..5]).err(), Some(Unsealable));
        assert!(
            !a.windows(secret.as_bytes().len())
                .any(|w| w == secret.as_bytes())
        );
        let moved = s.reseal(&sealer(2), 7, &a).unwrap();
        assert_eq!(
            sealer(2).open(7, &moved).unwrap().as_bytes(),
            secret.as_bytes()
        );
        assert!(s.open(7, &moved).is_err());
        assert_eq!(sealer(3).reseal(&sealer(2), 7, &a), None);
    }
}
