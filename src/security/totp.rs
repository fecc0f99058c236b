//! Authenticator-app codes (docs/behaviour.md §13.1, RFC 6238): SHA-1, 6 digits, 30 s steps,
//! one step of clock skew either way. [`TotpSecret::verify`] returns the time step a code
//! matched, so the caller can refuse a step already used (replay) with one atomic update of
//! the user's last used step. Codes come from `totp-rs`; the secret is 20 random bytes (the
//! RFC's SHA-1 key length), shown to the user in base32.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Secret length in bytes.
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret (zeroed on drop).
pub struct TotpSecret(Zeroizing<Vec<u8>>);

/// Why a secret was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a TOTP secret needs at least 16 bytes")]
    TooShort,
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Self(bytes)
    }

    /// A stored secret (decrypted by the caller). At least 128 bits, as RFC 4226 requires.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() < 16 {
            return Err(SecretError::TooShort);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as the user types it into an app: base32 without padding.
    pub fn base32(&self) -> String {
        self.totp(DIGITS).get_secret_base32()
    }

    /// The `otpauth://` URI an app reads from the QR code.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            enc(issuer),
            enc(account),
            self.base32(),
            enc(issuer)
        )
    }

    fn totp(&self, digits: usize) -> TOTP {
        TOTP::new_unchecked(Algorithm::SHA1, digits, 0, STEP, self.0.to_vec())
    }

    /// The code for Unix time `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp(DIGITS).generate(unix_secs)
    }

    /// The time step of `code` at `unix_secs`, trying the current step and one either side;
    /// `None` when it matches none (or is not 6 digits). Every candidate is compared, in
    /// constant time, so timing says nothing about which step matched.
    pub fn verify(&self, code: &str, unix_secs: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_secs / STEP;
        let mut found = None;
        for step in [now.saturating_sub(1), now, now + 1] {
            let expected = self.code_at(step * STEP);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8 digits, the RFC's 20-byte ASCII key).
    #[test]
    fn rfc_6238_sha1_vectors() {
        let key = b"12345678901234567890";
        let totp = TOTP::new(Algorithm::SHA1, 8, 0, 30, key.to_vec()).unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), code, "t = {time}");
        }
        // Our 6-digit codes are the last six digits of the RFC's.
        let ours = TotpSecret::from_bytes(key).unwrap();
        assert_eq!(ours.code_at(59), "287082");
        assert_eq!(ours.code_at(1_111_111_109), "081804");
        assert_eq!(ours.code_at(2_000_000_000), "279037");
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let t = 1_234_567_890;
        let step = t / STEP;
        let code = s.code_at(t);
        assert_eq!(s.verify(&code, t), Some(step));
        assert_eq!(s.verify(&code, t + STEP), Some(step), "a step late");
        assert_eq!(s.verify(&code, t - STEP), Some(step), "a step early");
        assert_eq!(s.verify(&code, t + 2 * STEP), None);
        assert_eq!(s.verify(&code, t - 2 * STEP), None);
    }

    #[test]
    fn malformed_codes_never_match() {
        let s = TotpSecret::generate();
        let t = 1_800_000_000;
        let code = s.code_at(t);
        for bad in [
            "",
            "12345",
            "1234567",
            "abcdef",
            " 12345",
            "١٢٣٤٥٦",
            &format!("{code} "),
        ] {
            assert_eq!(s.verify(bad, t), None, "{bad:?}");
        }
        assert!(TotpSecret::from_bytes(&[0; 15]).is_err());
    }

    #[test]
    fn secrets_are_random_and_show_as_base32_and_an_otpauth_uri() {
        let (a, b) = (TotpSecret::generate(), TotpSecret::generate());
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.as_bytes().len(), SECRET_BYTES);
        let b32 = a.base32();
        assert_eq!(b32.len(), 32, "20 bytes in base32");
        assert!(
            b32.bytes()
                .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c))
        );
        let uri = a.otpauth_uri("Example Site", "ann");
        assert!(
            uri.starts_with("otpauth://totp/Example%20Site:ann?secret="),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={b32}&")));
        assert!(uri.contains("digits=6") && uri.contains("period=30"));
    }
}
