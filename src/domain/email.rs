//! `Email`: an optional contact address, checked for shape only (docs/behaviour.md §3).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_BYTES: usize = 254;

    /// `Ok(None)` for an empty field: optional fields are stored as NULL.
    pub fn parse_optional(typed: &str) -> Result<Option<Self>, &'static str> {
        Ok(super::optional(typed, Self::check)?.map(Self))
    }

    fn check(s: &str) -> Result<(), &'static str> {
        if s.len() > Self::MAX_BYTES {
            return Err("Use at most 254 characters.");
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("Enter an email address like name@example.com.");
        };
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty())
            && !domain.chars().any(|c| c.is_whitespace() || c.is_control());
        let local_ok =
            !local.is_empty() && !local.chars().any(|c| c.is_whitespace() || c.is_control());
        if !local_ok || !domain_ok {
            return Err("Enter an email address like name@example.com.");
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness compares: see [`email_key`].
    pub fn key(&self) -> String {
        email_key(&self.0)
    }
}

/// An address ASCII-lowercased: two addresses are one account's when their keys are equal, on
/// either backend (SQLite's `NOCASE` folds exactly ASCII; PostgreSQL stores this key), so
/// `db copy` never meets a conflict the source did not have.
pub fn email_key(address: &str) -> String {
    address.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(Email::parse_optional("").unwrap(), None);
        assert_eq!(Email::parse_optional("  ").unwrap(), None);
        assert!(Email::parse_optional("a@b.co").unwrap().is_some());
        assert!(Email::parse_optional(" A@Example.COM ").unwrap().is_some());
        for bad in [
            "a", "a@b", "@b.co", "a@@b.co", "a@b@c.co", "a@.co", "a@b.", "a b@c.co", "a@b..co",
        ] {
            assert!(Email::parse_optional(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert!(Email::parse_optional(&long).is_err());
        assert!(Email::parse_optional(&long[1..]).is_ok());
    }
}
