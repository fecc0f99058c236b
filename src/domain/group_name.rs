//! `GroupName`: the name of a user group (docs/operations.md, "Groups"), `^[a-z0-9_-]{1,32}$`.
//! Taken as typed: no trimming or lowercasing, so `Admin` is refused rather than silently
//! becoming `admin` (an operator who means a different group should hear about it).

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl GroupName {
    pub const MAX: usize = 32;

    pub fn parse(typed: &str) -> Result<Self, &'static str> {
        if typed.is_empty() {
            return Err("Enter a group name.");
        }
        if typed.len() > Self::MAX {
            return Err("Use at most 32 characters.");
        }
        if !typed
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err("Use only lower-case letters a–z, digits, underscores and hyphens.");
        }
        Ok(Self(typed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for GroupName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_the_pattern() {
        let max = "a".repeat(32);
        let too_long = "a".repeat(33);
        let table: &[(&str, Result<&str, &str>)] = &[
            ("admin", Ok("admin")),
            ("a", Ok("a")),
            ("ops-team_2", Ok("ops-team_2")),
            ("-", Ok("-")),
            (&max, Ok(&max)),
            ("", Err("Enter a group name.")),
            (&too_long, Err("Use at most 32 characters.")),
            ("Admin", Err("lower-case")),
            ("a b", Err("lower-case")),
            (" admin", Err("lower-case")),
            ("admin\n", Err("lower-case")),
            ("ops,dev", Err("lower-case")),
            ("émile", Err("lower-case")),
            ("a.b", Err("lower-case")),
            ("a\u{0}", Err("lower-case")),
        ];
        for (typed, want) in table {
            match (GroupName::parse(typed), want) {
                (Ok(g), Ok(w)) => assert_eq!(g.as_str(), *w, "{typed:?}"),
                (Err(m), Err(w)) => assert!(m.contains(w), "{typed:?}: {m}"),
                (got, want) => panic!("{typed:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
