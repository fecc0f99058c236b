//! `PlainPassword`: a typed password that meets the length rule (docs/behaviour.md §2),
//! NFKC-normalised. Only sign-up and password change build one; sign-in applies no format rule. No
//! typed password is normalised before [`PlainPassword::fits_before_normalising`] says it may be:
//! NFKC runs on the HTTP worker, so its input must be bounded by more than the 64 KiB body limit.

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// NFKC, the same normalisation as the page's `s.normalize('NFKC')`. Callers on the request
/// path check [`PlainPassword::fits_before_normalising`] first.
pub fn canonical_password(typed: &str) -> String {
    typed.nfkc().collect()
}

/// Zeroed on drop so it does not linger in freed memory.
pub struct PlainPassword(Zeroizing<String>);

impl PlainPassword {
    pub const MIN: usize = 8;
    pub const MAX: usize = 1024;

    /// The most bytes a typed password may have before it is normalised: 16 KiB.
    ///
    /// It must never refuse a valid password (at most 1024 scalar values *after* NFKC), and NFKC
    /// can shrink its input: composition turns `e` + U+0301 into `é`, Hangul jamo L+V+T (9 bytes)
    /// into one syllable, a mathematical alpha (4 bytes) + three Greek marks into `ᾂ`. The bound:
    /// a valid result has ≤ 1024 scalars; each scalar of an NFKC result decomposes (NFKD) into at
    /// most 4 scalars, so NFKD of the result, which is NFKD of the input, has ≤ 4096; NFKD maps
    /// every input scalar to at least one, so the input has ≤ 4096 scalars of ≤ 4 bytes each:
    /// ≤ 16 384 bytes. Both Unicode facts are checked over every scalar value in the tests.
    pub const MAX_TYPED_BYTES: usize = 4 * 4 * Self::MAX;

    /// Whether a typed password is short enough to normalise (see [`Self::MAX_TYPED_BYTES`]).
    /// Anything longer cannot be a valid password.
    pub fn fits_before_normalising(typed: &str) -> bool {
        typed.len() <= Self::MAX_TYPED_BYTES
    }

    pub fn parse(typed: &str) -> Result<Self, &'static str> {
        if typed.is_empty() {
            return Err("Enter a password.");
        }
        // Bound the work before normalising; longer cannot be valid (see MAX_TYPED_BYTES).
        if !Self::fits_before_normalising(typed) {
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

    /// 1024 × `ᾂ` typed as a mathematical bold alpha (4 bytes) + U+0313 U+0300 U+0345 (2 bytes
    /// each): 10 bytes a character, the most this test knows of.
    fn greek_decomposed(n: usize) -> String {
        "\u{1d6c2}\u{313}\u{300}\u{345}".repeat(n)
    }

    /// 1024 Hangul syllables typed as conjoining jamo L+V+T: 9 bytes a character.
    fn hangul_decomposed(n: usize) -> String {
        "\u{1100}\u{1161}\u{11a8}".repeat(n)
    }

    #[test]
    fn the_bound_before_normalising_refuses_no_valid_password() {
        assert_eq!(PlainPassword::MAX_TYPED_BYTES, 16 * 1024);
        // (typed, fits before normalising, accepted as a new password)
        let table: Vec<(String, bool, bool)> = vec![
            ("x".repeat(PlainPassword::MAX_TYPED_BYTES), true, false),
            ("x".repeat(PlainPassword::MAX_TYPED_BYTES + 1), false, false),
            ("é".repeat(PlainPassword::MAX_TYPED_BYTES / 2), true, false),
            (
                format!("{}x", "é".repeat(PlainPassword::MAX_TYPED_BYTES / 2)),
                false,
                false,
            ),
            ("🔑".repeat(1024), true, true),
            ("🔑".repeat(1025), true, false),
            (hangul_decomposed(1024), true, true),
            (hangul_decomposed(1025), true, false),
            (greek_decomposed(1024), true, true),
            (greek_decomposed(1025), true, false),
            ("e\u{301}".repeat(1024), true, true),
            // NFKC expands U+FDFA to 18 scalars: 57 of them are over 1024 after.
            ("\u{fdfa}".repeat(56), true, true),
            ("\u{fdfa}".repeat(57), true, false),
            ("x".repeat(4 * 1024 * 1024), false, false),
        ];
        for (typed, fits, accepted) in &table {
            let what = format!("{} bytes starting {:?}", typed.len(), typed.chars().next());
            assert_eq!(
                PlainPassword::fits_before_normalising(typed),
                *fits,
                "{what}"
            );
            match PlainPassword::parse(typed) {
                Ok(p) => {
                    assert!(*accepted, "{what} accepted");
                    assert!(p.as_str().chars().count() <= PlainPassword::MAX);
                }
                Err(m) => {
                    assert!(!*accepted, "{what} refused: {m}");
                    assert_eq!(m, "Use at most 1024 characters.", "{what}");
                }
            }
        }
        assert_eq!(
            canonical_password(&hangul_decomposed(1024)),
            "\u{ac01}".repeat(1024)
        );
        assert_eq!(
            canonical_password(&greek_decomposed(1024)),
            "\u{1f82}".repeat(1024)
        );
    }

    /// The two Unicode facts [`PlainPassword::MAX_TYPED_BYTES`] rests on, over every scalar
    /// value, so a new Unicode version in `unicode-normalization` cannot silently break the
    /// bound.
    #[test]
    fn nfkc_results_decompose_to_at_most_four_and_nothing_decomposes_to_none() {
        let mut longest = 0;
        for c in (0..=0x10_ffff_u32).filter_map(char::from_u32) {
            let decomposed = c.nfkd().count();
            assert!(decomposed >= 1, "U+{:04X} vanishes", c as u32);
            let mut composed = c.nfkc();
            if composed.next() == Some(c) && composed.next().is_none() {
                longest = longest.max(decomposed);
            }
        }
        assert_eq!(longest, 4);
    }

    #[test]
    fn debug_hides_the_password() {
        let p = PlainPassword::parse("secret-password").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
