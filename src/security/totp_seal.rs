//! TOTP secrets at rest (docs/behaviour.md §13.1): XChaCha20-Poly1305 under a key derived from
//! the site key with its own label, a random nonce per secret, and the user's id as associated
//! data, so a sealed secret copied onto another user's row does not open. A database copy
//! alone never shows a secret.

use zeroize::Zeroizing;

use crate::security::seal;
use crate::security::secret::SecretKey;
use crate::security::totp::TotpSecret;

/// The label of the TOTP key: no other use of the site key derives the same bytes.
const LABEL: &str = "totp-secret:";

/// Seals and opens users' TOTP secrets.
#[derive(Clone)]
pub struct TotpSealer(seal::Sealer);

/// The secret did not open: another key, another user's row, or altered bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the TOTP secret does not open with this site key")]
pub struct Unsealable;

fn aad(user_id: i64) -> [u8; 8] {
    user_id.to_be_bytes()
}

impl TotpSealer {
    pub fn new(key: &SecretKey) -> Self {
        Self(seal::Sealer::new(key, LABEL))
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `user_id`.
    pub fn seal(&self, user_id: i64, secret: &TotpSecret) -> Vec<u8> {
        self.0.seal(&aad(user_id), secret.as_bytes())
    }

    /// The secret [`Self::seal`] was given for `user_id`.
    pub fn open(&self, user_id: i64, sealed: &[u8]) -> Result<TotpSecret, Unsealable> {
        let plain = self.open_bytes(user_id, sealed)?;
        TotpSecret::from_bytes(&plain).map_err(|_| Unsealable)
    }

    fn open_bytes(&self, user_id: i64, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Unsealable> {
        self.0.open(&aad(user_id), sealed).map_err(|_| Unsealable)
    }

    /// `gatehouse key rotate`: `sealed` opened with this key and sealed again with `to`;
    /// `None` when it does not open.
    pub fn reseal(&self, to: &TotpSealer, user_id: i64, sealed: &[u8]) -> Option<Vec<u8>> {
        let plain = self.open_bytes(user_id, sealed).ok()?;
        Some(to.0.seal(&aad(user_id), &plain))
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
