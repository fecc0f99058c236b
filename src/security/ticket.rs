//! A short-lived signed ticket naming a user who just proved their password but has no session
//! (`--email-verification required` keeps them out until their address is confirmed): the 403
//! page's form carries it, so that setting an address or asking for the link again needs no
//! second password entry and no session. HMAC under its own label; expires in minutes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::security::secret::SecretKey;

const LABEL: &str = "verify-ticket:";

/// How long a ticket works.
pub const TICKET_MS: i64 = 10 * 60 * 1000;

/// `USER_ID.EXPIRES_MS.SIG`.
pub fn issue(key: &SecretKey, user_id: i64, now_ms: i64) -> String {
    let body = format!("{user_id}.{}", now_ms + TICKET_MS);
    let sig = URL_SAFE_NO_PAD.encode(key.mac(LABEL, body.as_bytes()));
    format!("{body}.{sig}")
}

/// The user a ticket names, if it is genuine and unexpired.
pub fn verify(key: &SecretKey, ticket: &str, now_ms: i64) -> Option<i64> {
    let (body, sig) = ticket.rsplit_once('.')?;
    let (user, expires) = body.split_once('.')?;
    let user_id: i64 = user.parse().ok()?;
    let expires: i64 = expires.parse().ok()?;
    let tag = URL_SAFE_NO_PAD.decode(sig).ok()?;
    (key.verify(LABEL, body.as_bytes(), &tag) && now_ms < expires).then_some(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_verify_only_untampered_and_unexpired() {
        let k = SecretKey::from_bytes(&[5u8; 32]).unwrap();
        let t = issue(&k, 42, 1_000);
        assert_eq!(verify(&k, &t, 1_001), Some(42));
        assert_eq!(verify(&k, &t, 1_000 + TICKET_MS), None);
        assert_eq!(verify(&k, &t.replacen("42", "43", 1), 1_001), None);
        let other = SecretKey::from_bytes(&[6u8; 32]).unwrap();
        assert_eq!(verify(&other, &t, 1_001), None);
        for bad in ["", "42", "42.5", "a.b.c", "42.99999999999.x"] {
            assert_eq!(verify(&k, bad, 1_001), None, "{bad}");
        }
    }
}
