//! The ceremony checks against a software authenticator: what the browser is asked for, and
//! refusals of a wrong origin, a wrong RP ID, a challenge from another ceremony and a
//! signature counter that goes back.

use super::*;

/// The software authenticator (shared with the HTTP suites and the flow tests).
#[path = "../../tests/common/soft_authenticator.rs"]
pub(crate) mod soft;
use soft::{Lies, SoftKey};

const ORIGIN: &str = "https://id.example.org";

fn rp() -> RelyingParty {
    RelyingParty::from_url("https://id.example.org/some/path").unwrap()
}

fn registered(rp: &RelyingParty) -> (SoftKey, Registered) {
    let started = start_registration(rp, &[5; 16], "ann", "Ann", vec![]).unwrap();
    let (key, answer) = SoftKey::register(&started.public_key, ORIGIN, &Lies::default());
    let reg = finish_registration(rp, &started.state, answer).unwrap();
    (key, reg)
}

fn sign_in(
    rp: &RelyingParty,
    passkey: &str,
    answer: serde_json::Value,
    state: &str,
) -> Result<Verified, CheckError> {
    let assertion = identify(answer)?;
    finish_sign_in(rp, state, &assertion, passkey)
}

#[test]
fn relying_party_follows_the_public_url() {
    let rp = rp();
    assert_eq!(rp.id(), "id.example.org");
    assert_eq!(rp.origin().as_str(), "https://id.example.org/");
    assert_eq!(RelyingParty::from_url("http://127.0.0.1:8080"), None);
    let local = RelyingParty::for_site(None, "http://localhost:4321").unwrap();
    assert_eq!(
        (local.id(), local.origin().port()),
        ("localhost", Some(4321))
    );
    // Without --public-url, only localhost; with it, the request's origin does not matter.
    assert_eq!(
        RelyingParty::for_site(None, "http://gatehouse.test:8080"),
        None
    );
    assert_eq!(
        RelyingParty::for_site(Some(ORIGIN), "http://localhost:1").unwrap(),
        rp
    );
}

#[test]
fn ceremony_ids_round_trip_and_hash() {
    let id = CeremonyId::generate();
    let again = CeremonyId::parse(&id.to_wire()).unwrap();
    assert_eq!(again.hash(), id.hash());
    assert_ne!(CeremonyId::generate().hash(), id.hash());
    assert!(CeremonyId::parse("short").is_none());
    assert!(CeremonyId::parse(&"!".repeat(43)).is_none());
}

#[test]
fn registration_asks_for_a_resident_key_and_user_verification() {
    let started = start_registration(&rp(), &[5; 16], "ann", "Ann", vec![vec![1, 2, 3]]).unwrap();
    let pk = &started.public_key;
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["rp"]["id"], "id.example.org");
    assert_eq!(pk["user"]["name"], "ann");
    assert_eq!(pk["excludeCredentials"][0]["id"], "AQID");
    let signin = start_sign_in(&rp()).unwrap();
    assert_eq!(signin.public_key["userVerification"], "required");
    assert_eq!(signin.public_key["rpId"], "id.example.org");
}

#[test]
fn a_registered_key_signs_in_and_counts() {
    let rp = rp();
    let (mut key, reg) = registered(&rp);
    assert_eq!(reg.credential_id, key.credential_id);
    let started = start_sign_in(&rp).unwrap();
    let answer = key.sign(&started.public_key, ORIGIN, &Lies::default());
    let assertion = identify(answer).unwrap();
    assert_eq!(assertion.user_handle, vec![5; 16]);
    assert_eq!(assertion.credential_id, reg.credential_id);
    let ok = finish_sign_in(&rp, &started.state, &assertion, &reg.passkey).unwrap();
    assert_eq!(ok.counter, 1);
}

/// A registration and a sign-in answered with `lie` are both refused. Answers a key that did
/// register honestly, its registration, and the sign-in ceremony it lied to.
fn both_ceremonies_refuse(rp: &RelyingParty, lie: &Lies) -> (SoftKey, Registered, Started) {
    let started = start_registration(rp, &[5; 16], "ann", "Ann", vec![]).unwrap();
    let (_, answer) = SoftKey::register(&started.public_key, ORIGIN, lie);
    assert!(matches!(
        finish_registration(rp, &started.state, answer),
        Err(CheckError::Refused(_))
    ));
    let (mut key, reg) = registered(rp);
    let started = start_sign_in(rp).unwrap();
    let answer = key.sign(&started.public_key, ORIGIN, lie);
    assert!(matches!(
        sign_in(rp, &reg.passkey, answer, &started.state),
        Err(CheckError::Refused(_))
    ));
    (key, reg, started)
}

#[test]
fn a_wrong_origin_is_refused() {
    let rp = rp();
    let lie = Lies {
        origin: Some("https://evil.example.net".into()),
        ..Lies::default()
    };
    let (mut key, reg, started) = both_ceremonies_refuse(&rp, &lie);
    // A look-alike subdomain is another origin too.
    let sub = Lies {
        origin: Some("https://evil.id.example.org".into()),
        ..Lies::default()
    };
    let answer = key.sign(&started.public_key, ORIGIN, &sub);
    assert!(sign_in(&rp, &reg.passkey, answer, &started.state).is_err());
}

#[test]
fn a_wrong_rp_id_is_refused() {
    let rp = rp();
    let lie = Lies {
        rp_id: Some("example.org".into()),
        ..Lies::default()
    };
    let (mut key, reg, started) = both_ceremonies_refuse(&rp, &lie);
    // A passkey of another site (same key, registered for another RP) opens nothing here.
    let other = RelyingParty::from_url("https://other.example.com").unwrap();
    let answer = key.sign(
        &started.public_key,
        "https://other.example.com",
        &Lies::default(),
    );
    assert!(sign_in(&other, &reg.passkey, answer, &started.state).is_err());
}

#[test]
fn an_answer_to_another_challenge_is_refused() {
    let rp = rp();
    let (mut key, reg) = registered(&rp);
    let first = start_sign_in(&rp).unwrap();
    let answer = key.sign(&first.public_key, ORIGIN, &Lies::default());
    assert!(sign_in(&rp, &reg.passkey, answer.clone(), &first.state).is_ok());
    // Replayed against a new ceremony (the old one is gone: the store takes it once).
    let second = start_sign_in(&rp).unwrap();
    assert!(matches!(
        sign_in(&rp, &reg.passkey, answer, &second.state),
        Err(CheckError::Refused(_))
    ));
    // A registration answer replayed against a new registration, likewise.
    let started = start_registration(&rp, &[5; 16], "ann", "Ann", vec![]).unwrap();
    let (_, answer) = SoftKey::register(&started.public_key, ORIGIN, &Lies::default());
    let again = start_registration(&rp, &[5; 16], "ann", "Ann", vec![]).unwrap();
    assert!(finish_registration(&rp, &again.state, answer).is_err());
}

#[test]
fn a_counter_that_goes_back_is_refused_and_zero_is_allowed() {
    let rp = rp();
    let (key, reg) = registered(&rp);
    let started = start_sign_in(&rp).unwrap();
    let at5 = key.sign_with_counter(&started.public_key, ORIGIN, &Lies::default(), 5);
    let used = sign_in(&rp, &reg.passkey, at5, &started.state).unwrap();
    assert_eq!(used.counter, 5);
    for back in [5, 3, 0] {
        let started = start_sign_in(&rp).unwrap();
        let answer = key.sign_with_counter(&started.public_key, ORIGIN, &Lies::default(), back);
        assert!(
            matches!(
                sign_in(&rp, &used.passkey, answer, &started.state),
                Err(CheckError::Refused(_))
            ),
            "counter {back} after 5"
        );
    }
    // An authenticator that never counts stays at 0, use after use.
    let (mut still, reg) = registered(&rp);
    still.counter = None;
    let mut passkey = reg.passkey;
    for _ in 0..2 {
        let started = start_sign_in(&rp).unwrap();
        let answer = still.sign(&started.public_key, ORIGIN, &Lies::default());
        let v = sign_in(&rp, &passkey, answer, &started.state).unwrap();
        assert_eq!(v.counter, 0);
        passkey = v.passkey;
    }
}

#[test]
fn malformed_answers_are_malformed() {
    assert!(matches!(
        identify(serde_json::json!({"id": 1})),
        Err(CheckError::Malformed(_))
    ));
    let started = start_registration(&rp(), &[5; 16], "ann", "Ann", vec![]).unwrap();
    assert!(matches!(
        finish_registration(&rp(), &started.state, serde_json::json!("nope")),
        Err(CheckError::Malformed(_))
    ));
}
