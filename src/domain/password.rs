//! `PlainPassword`: a typed password that meets the length rule (SPEC §2), NFKC-normalised.
//! Only sign-up and password change build one; sign-in applies no format rule.

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// NFKC, the same normalisation as the page's `s.normalize('NFKC')`.
pub fn canonical_password(typed: &str) -> String {
    typed.nfkc().collect()
}

/// Zeroed on drop so it does not linger in freed memory.
pub struct PlainPassword(Zeroizing<String>);

impl PlainPassword {
    pub const MIN: usize = 8;
    pub const MAX: usize = 1024;

    pub fn parse(typed: &str) -> Result<Self, &'static str> {
        if typed.is_empty() {
            return Err("Enter a password.");
        }
        // Bound the work before normalising: NFKC expands at most 18× per character,
        // but anything this long in bytes already exceeds the limit in characters.
        if typed.len() > Self::MAX * 4 {
            return Err("Use at most 1024 characters.");
        }
        let normalised = canonical_password(typed);
        let n = normalised.chars().count();
        if n < Self::MIN {
            return Err("Use at least 8 characters.");
        }
        if n > Self::MAX {
            return Err("Use at most 1024 characters.");
        }
        Ok(Self(Zeroizing::new(normalised)))
    }

    /// The NFKC-normalised password.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PlainPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainPassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scalar_values_after_nfkc() {
        assert!(PlainPassword::parse("1234567").is_err());
        assert!(PlainPassword::parse("12345678").is_ok());
        // "ﬁ" (one char) becomes "fi" (two) under NFKC: 7 typed chars, 8 after.
        assert!(PlainPassword::parse("\u{fb01}123456").is_ok());
        // 8 emoji = 8 scalar values (16 UTF-16 units)
        assert!(PlainPassword::parse(&"🔑".repeat(8)).is_ok());
        assert!(PlainPassword::parse(&"🔑".repeat(7)).is_err());
        assert!(PlainPassword::parse(&"x".repeat(1024)).is_ok());
        assert!(PlainPassword::parse(&"x".repeat(1025)).is_err());
        assert!(PlainPassword::parse(&"x".repeat(100_000)).is_err());
        assert!(PlainPassword::parse("").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let p = PlainPassword::parse("secret-password").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
