//! `PasskeyName`: the label a user gives a passkey ("laptop"), 1–64 characters after trimming,
//! no control characters (docs/behaviour.md §13.2).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    pub const MAX: usize = 64;

    pub fn parse(typed: &str) -> Result<Self, &'static str> {
        let s = typed.trim();
        if s.is_empty() {
            return Err("Give the passkey a name, such as “laptop”.");
        }
        if s.chars().any(char::is_control) {
            return Err("Remove control characters such as tabs or line breaks.");
        }
        if s.chars().count() > Self::MAX {
            return Err("Use at most 64 characters.");
        }
        Ok(Self(s.to_owned()))
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
        assert_eq!(PasskeyName::parse(" laptop ").unwrap().as_str(), "laptop");
        assert!(PasskeyName::parse("   ").is_err());
        assert!(PasskeyName::parse("a\tb").is_err());
        assert!(PasskeyName::parse(&"é".repeat(64)).is_ok());
        assert!(PasskeyName::parse(&"é".repeat(65)).is_err());
    }
}
