//! Device cookies (OWASP's answer to lockout denial of service): a browser that signed in as a
//! user gets a signed token for that user. Sign-ins bearing a valid one are exempt from the
//! username lock and get their own per-device failure limit instead, so an attacker who keeps a
//! username locked does not lock its owner's own browsers out.
//!
//! Token: `user_id.nonce.issued_ms.mac`, where the MAC (label `device:`) also covers the
//! user's `password_changed_at`: a password change invalidates every device token of the user
//! without any stored state.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::security::secret::SecretKey;

const LABEL: &str = "device:";
/// How long a device token is honoured after it was issued (renewed at each sign-in).
pub const LIFETIME_MS: i64 = 180 * 24 * 3600 * 1000;

fn message(user_id: i64, nonce: &str, issued_ms: i64, password_changed_ms: i64) -> String {
    format!("{user_id}.{nonce}.{issued_ms}.{password_changed_ms}")
}

/// A new token for `user_id`, bound to the current password.
pub fn issue(key: &SecretKey, user_id: i64, password_changed_ms: i64, now_ms: i64) -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let nonce = hex::encode(bytes);
    let mac = key.mac(
        LABEL,
        message(user_id, &nonce, now_ms, password_changed_ms).as_bytes(),
    );
    format!("{user_id}.{nonce}.{now_ms}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// The token's device id (its nonce) when it is a valid, unexpired token for this user and
/// password.
pub fn verify(
    key: &SecretKey,
    token: &str,
    user_id: i64,
    password_changed_ms: i64,
    now_ms: i64,
) -> Option<String> {
    if token.len() > 200 {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(uid), Some(nonce), Some(issued), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let uid: i64 = uid.parse().ok()?;
    let issued: i64 = issued.parse().ok()?;
    if uid != user_id || nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if now_ms < issued || now_ms - issued > LIFETIME_MS {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(mac).ok()?;
    key.verify(
        LABEL,
        message(uid, nonce, issued, password_changed_ms).as_bytes(),
        &tag,
    )
    .then(|| nonce.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[5u8; 32]).unwrap()
    }

    #[test]
    fn valid_only_for_its_user_password_and_lifetime() {
        let k = key();
        let t = issue(&k, 7, 1_000, 2_000);
        assert!(verify(&k, &t, 7, 1_000, 3_000).is_some());
        assert!(verify(&k, &t, 8, 1_000, 3_000).is_none(), "another user");
        assert!(
            verify(&k, &t, 7, 1_001, 3_000).is_none(),
            "password changed"
        );
        assert!(
            verify(&k, &t, 7, 1_000, 2_000 + LIFETIME_MS + 1).is_none(),
            "expired"
        );
        assert!(
            verify(&k, &t, 7, 1_000, 1_999).is_none(),
            "issued in the future"
        );
        let other = SecretKey::from_bytes(&[6u8; 32]).unwrap();
        assert!(verify(&other, &t, 7, 1_000, 3_000).is_none(), "another key");
        // Tampering with any part breaks it.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("8.{}.{}.{}", parts[1], parts[2], parts[3]);
        assert!(verify(&k, &forged, 8, 1_000, 3_000).is_none());
        let later = format!("7.{}.{}.{}", parts[1], 2_500, parts[3]);
        assert!(verify(&k, &later, 7, 1_000, 3_000).is_none());
        // Two tokens name two devices.
        let t2 = issue(&k, 7, 1_000, 2_000);
        assert_ne!(
            verify(&k, &t, 7, 1_000, 3_000),
            verify(&k, &t2, 7, 1_000, 3_000)
        );
    }

    proptest! {
        #[test]
        fn garbage_never_verifies(s in "\\PC{0,120}") {
            prop_assert!(verify(&key(), &s, 7, 1_000, 3_000).is_none());
        }
    }
}
