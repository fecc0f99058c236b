//! What a browser types or holds in the second step (docs/behaviour.md §13): a recovery code,
//! an authenticator code, a passkey's name and a WebAuthn ceremony id. None panics; a recovery
//! code's stored form is that of its normalised text; a ceremony id is read only in its one
//! canonical spelling; a name is kept trimmed and within its bounds.
#![no_main]

use gatehouse::domain::PasskeyName;
use gatehouse::security::passkey::CeremonyId;
use gatehouse::security::{recovery, totp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Some(n) = recovery::normalize(raw) {
        assert_eq!(recovery::normalize(&n).as_deref(), Some(n.as_str()), "{raw:?}");
        assert_eq!(recovery::hash(raw), recovery::hash(&n), "{raw:?}");
    } else {
        assert!(recovery::hash(raw).is_none());
    }

    let secret = totp::TotpSecret::from_bytes(&[7u8; 20]).expect("a 160-bit secret");
    if secret.verify(raw, 1_800_000_000).is_some() {
        assert!(raw.len() == totp::DIGITS && raw.bytes().all(|b| b.is_ascii_digit()), "{raw:?}");
    }

    if let Some(id) = CeremonyId::parse(raw) {
        assert_eq!(id.to_wire(), raw, "a ceremony id has one spelling");
    }

    if let Ok(name) = PasskeyName::parse(raw) {
        let kept = name.as_str();
        assert_eq!(kept, kept.trim());
        assert!(!kept.is_empty() && kept.chars().count() <= PasskeyName::MAX);
        assert!(!kept.chars().any(char::is_control));
    }
});
