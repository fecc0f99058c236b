//! `FullName`: an optional display name, 1–100 characters, no control characters
//! (docs/behaviour.md §3).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub const MAX: usize = 100;

    /// `Ok(None)` for an empty field: optional fields are stored as NULL.
    pub fn parse_optional(typed: &str) -> Result<Option<Self>, &'static str> {
        Ok(super::optional(typed, Self::check)?.map(Self))
    }

    fn check(s: &str) -> Result<(), &'static str> {
        if s.chars().any(char::is_control) {
            return Err("Remove control characters such as tabs or line breaks.");
        }
        if s.chars().count() > Self::MAX {
            return Err("Use at most 100 characters.");
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(FullName::parse_optional("").unwrap(), None);
        assert_eq!(
            FullName::parse_optional(" Zoë Ω ")
                .unwrap()
                .unwrap()
                .as_str(),
            "Zoë Ω"
        );
        assert!(FullName::parse_optional("a\nb").is_err());
        assert!(FullName::parse_optional("a\u{7f}b").is_err());
        assert!(FullName::parse_optional(&"é".repeat(100)).is_ok());
        assert!(FullName::parse_optional(&"é".repeat(101)).is_err());
    }
}
