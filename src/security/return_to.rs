//! Where a sign-in leads: the signed local `next` of Gatehouse's own pages (§5), or the signed
//! absolute `rd` of an app behind a forward-auth proxy (§10.2), which takes precedence; anything
//! else, `/welcome`. The sign-in form carries the pair it was given in hidden fields.

use crate::security::forward::{self, ForwardPolicy, ReturnUrl};
use crate::security::redirect::{self, LocalPath};
use crate::security::secret::SecretKey;

/// A verified return address with the signature that verified it (to post it back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnTo {
    Local { next: LocalPath, sig: String },
    Forward { rd: ReturnUrl, sig: String },
    Welcome,
}

impl ReturnTo {
    /// Judges the `next`, `rd` and `sig` a sign-in request carried. With `rd` present, `sig` is
    /// `rd`'s and `next` is ignored; an invalid pair is silently `/welcome`.
    pub fn verify(
        key: &SecretKey,
        policy: &ForwardPolicy,
        next: Option<&str>,
        rd: Option<&str>,
        sig: Option<&str>,
    ) -> Self {
        let sig = sig.unwrap_or_default();
        let verified = match (rd.filter(|s| !s.is_empty()), next.filter(|s| !s.is_empty())) {
            (Some(rd), _) => forward::verify(key, policy, rd, sig).map(|rd| Self::Forward {
                rd,
                sig: sig.to_owned(),
            }),
            (None, Some(next)) => redirect::verify(key, next, sig).map(|next| Self::Local {
                next,
                sig: sig.to_owned(),
            }),
            (None, None) => return Self::Welcome,
        };
        verified.unwrap_or_else(|| {
            tracing::debug!("ignoring an unsigned or invalid return address");
            Self::Welcome
        })
    }

    /// The `Location` to send the browser to.
    pub fn location(&self) -> String {
        match self {
            Self::Local { next, .. } => next.to_location(),
            Self::Forward { rd, .. } => rd.as_str().to_owned(),
            Self::Welcome => redirect::DEFAULT_TARGET.to_owned(),
        }
    }

    /// The hidden form fields that carry the address through a failed attempt.
    pub fn hidden_fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Local { next, sig } => vec![("next", next.as_str().into()), ("sig", sig.clone())],
            Self::Forward { rd, sig } => vec![("rd", rd.as_str().into()), ("sig", sig.clone())],
            Self::Welcome => Vec::new(),
        }
    }

    pub fn is_forward(&self) -> bool {
        matches!(self, Self::Forward { .. })
    }

    /// The origin a successful sign-in leaves for, when it is not this site's.
    pub fn foreign_origin(&self) -> Option<String> {
        match self {
            Self::Forward { rd, .. } => Some(rd.origin()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::forward::ForwardDomains;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[3u8; 32]).unwrap()
    }

    fn policy() -> ForwardPolicy {
        ForwardPolicy {
            domains: ForwardDomains::parse(&["example.org"]).unwrap(),
            allow_http: false,
        }
    }

    #[test]
    fn rd_wins_over_next_and_each_needs_its_own_signature() {
        let k = key();
        let rd = ReturnUrl::parse("https://app.example.org/x", &policy()).unwrap();
        let rd_sig = forward::sign(&k, &rd);
        let next = LocalPath::parse("/account").unwrap();
        let next_sig = redirect::sign(&k, &next);
        let p = policy();

        let both = ReturnTo::verify(&k, &p, Some("/account"), Some(rd.as_str()), Some(&rd_sig));
        assert_eq!(both.location(), "https://app.example.org/x");
        assert!(both.is_forward());
        assert_eq!(both.hidden_fields()[0], ("rd", rd.as_str().to_owned()));
        assert_eq!(
            both.foreign_origin().as_deref(),
            Some("https://app.example.org")
        );
        // `next`'s signature does not verify `rd`, and a bad `rd` does not fall back to `next`.
        assert_eq!(
            ReturnTo::verify(&k, &p, Some("/account"), Some(rd.as_str()), Some(&next_sig)),
            ReturnTo::Welcome
        );
        assert_eq!(
            ReturnTo::verify(&k, &p, Some("/account"), None, Some(&next_sig)).location(),
            "/account"
        );
        // `rd`'s signature does not verify `next`.
        assert_eq!(
            ReturnTo::verify(&k, &p, Some(rd.as_str()), None, Some(&rd_sig)),
            ReturnTo::Welcome
        );
        // Without forward domains, no `rd` is followed even when signed.
        let none = ForwardPolicy::default();
        assert_eq!(
            ReturnTo::verify(&k, &none, None, Some(rd.as_str()), Some(&rd_sig)),
            ReturnTo::Welcome
        );
        assert_eq!(
            ReturnTo::verify(&k, &p, None, None, None).location(),
            "/welcome"
        );
        assert!(ReturnTo::Welcome.hidden_fields().is_empty());
    }
}
