//! `Username`: a canonical user name (docs/behaviour.md §2), `^[a-z0-9_]{3,32}$`.

use std::fmt;

/// Trims surrounding whitespace (as JS `String.prototype.trim` does, BOM included) and
/// lowercases ASCII letters only, so browser and server agree byte for byte.
pub fn canonical_username(typed: &str) -> String {
    typed
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .to_ascii_lowercase()
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    /// Canonicalises `typed` and checks the result.
    pub fn parse(typed: &str) -> Result<Self, &'static str> {
        let canon = canonical_username(typed);
        if canon.is_empty() {
            return Err("Enter a username.");
        }
        if canon.len() < Self::MIN {
            return Err("Use at least 3 characters.");
        }
        if canon.len() > Self::MAX {
            return Err("Use at most 32 characters.");
        }
        if !canon
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err("Use only letters a–z, digits and underscores.");
        }
        Ok(Self(canon))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonicalises() {
        assert_eq!(Username::parse("  Bob_42 ").unwrap().as_str(), "bob_42");
        assert_eq!(
            Username::parse("\u{feff}alice\t").unwrap().as_str(),
            "alice"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "  ",
            "ab",
            "a b c",
            "al-ice",
            "alice!",
            "ÄLICE",
            "émile",
            "a\u{0}bc",
            "abcdefghijklmnopqrstuvwxyz1234567",
            "<script>",
            "alice\u{212a}",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse("abcdefghijklmnopqrstuvwxyz123456").is_ok());
    }

    #[test]
    fn non_ascii_is_not_lowercased() {
        // Kelvin sign lowercases to 'k' under Unicode rules; docs/behaviour.md §2 says ASCII only.
        assert_eq!(canonical_username("\u{212a}EY"), "\u{212a}ey");
    }

    proptest! {
        #[test]
        fn parsed_names_match_the_pattern(s in "\\PC{0,40}") {
            if let Ok(u) = Username::parse(&s) {
                let v = u.as_str();
                prop_assert!((3..=32).contains(&v.len()));
                prop_assert!(v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
                prop_assert_eq!(Username::parse(v).unwrap(), u.clone());
            }
        }
    }
}
