//! The passkey flows with a software authenticator and a manual clock: a ceremony is used
//! once and lasts five minutes, a counter that goes back is refused, and a passkey sign-in
//! neither consults nor clears §4's lock.

use super::*;
use crate::domain::PasskeyName;
use crate::security::passkey::RelyingParty;

use crate::security::passkey::tests::soft::{Lies, SoftKey};

const ORIGIN: &str = "https://id.example.org";

fn rp() -> RelyingParty {
    RelyingParty::from_url(ORIGIN).unwrap()
}

async fn registered(accounts: &Accounts, user: &User) -> SoftKey {
    let name = PasskeyName::parse("laptop").unwrap();
    let started = accounts
        .start_passkey_registration(&rp(), user, name, &browser())
        .await
        .unwrap();
    let (key, answer) = SoftKey::register(&started.public_key, ORIGIN, &Lies::default());
    accounts
        .finish_passkey_registration(&rp(), user, &started.ceremony.to_wire(), answer, &browser())
        .await
        .unwrap();
    key
}

/// A sign-in ceremony begun and answered by `key` with `counter` (the key's own when `None`).
async fn answered(
    accounts: &Accounts,
    key: &mut SoftKey,
    counter: Option<u32>,
) -> (String, serde_json::Value) {
    let started = accounts
        .start_passkey_sign_in(&rp(), &browser())
        .await
        .unwrap();
    let answer = match counter {
        Some(c) => key.sign_with_counter(&started.public_key, ORIGIN, &Lies::default(), c),
        None => key.sign(&started.public_key, ORIGIN, &Lies::default()),
    };
    (started.ceremony.to_wire(), answer)
}

async fn finish(
    accounts: &Accounts,
    ceremony: &str,
    answer: serde_json::Value,
) -> Result<SignedIn, PasskeyError> {
    accounts
        .finish_passkey_sign_in(&rp(), ceremony, answer, &browser(), None)
        .await
}

#[tokio::test]
async fn a_ceremony_is_used_once_and_lasts_five_minutes() {
    let r = rig();
    let ann = user(&r.accounts, "ann").await;
    let mut key = registered(&r.accounts, &ann).await;
    let (ceremony, answer) = answered(&r.accounts, &mut key, None).await;
    let signed = finish(&r.accounts, &ceremony, answer.clone())
        .await
        .unwrap();
    assert_eq!(signed.username, "ann");
    // The same ceremony again (a replayed challenge): gone.
    assert!(matches!(
        finish(&r.accounts, &ceremony, answer).await,
        Err(PasskeyError::Expired)
    ));
    let (ceremony, answer) = answered(&r.accounts, &mut key, None).await;
    r.clock.advance(CEREMONY_TTL);
    assert!(matches!(
        finish(&r.accounts, &ceremony, answer).await,
        Err(PasskeyError::Expired)
    ));
    let trail = r.trail.0.lock().unwrap().clone();
    assert!(trail.contains(&("passkey_added", "ok")));
    assert!(trail.contains(&("passkey_used", "ok")));
}

#[tokio::test]
async fn a_counter_that_goes_back_is_refused() {
    let r = rig();
    let ann = user(&r.accounts, "ann").await;
    let mut key = registered(&r.accounts, &ann).await;
    let (ceremony, answer) = answered(&r.accounts, &mut key, Some(7)).await;
    finish(&r.accounts, &ceremony, answer).await.unwrap();
    for back in [7, 6] {
        let (ceremony, answer) = answered(&r.accounts, &mut key, Some(back)).await;
        assert!(matches!(
            finish(&r.accounts, &ceremony, answer).await,
            Err(PasskeyError::Rejected)
        ));
    }
    assert!(
        r.trail
            .0
            .lock()
            .unwrap()
            .contains(&("passkey_used", "failed"))
    );
    let (ceremony, answer) = answered(&r.accounts, &mut key, Some(8)).await;
    finish(&r.accounts, &ceremony, answer).await.unwrap();
}

#[tokio::test]
async fn a_passkey_neither_consults_nor_clears_the_lock() {
    let r = rig();
    let ann = user(&r.accounts, "ann").await;
    let mut key = registered(&r.accounts, &ann).await;
    lock_out(&r.accounts, "ann").await;
    let (ceremony, answer) = answered(&r.accounts, &mut key, None).await;
    finish(&r.accounts, &ceremony, answer).await.unwrap();
    locked_out(&r.accounts, "ann").await;
}

#[tokio::test]
async fn another_users_registration_and_removed_passkeys_open_nothing() {
    let r = rig();
    let ann = user(&r.accounts, "ann").await;
    let bob = user(&r.accounts, "bob").await;
    let name = PasskeyName::parse("laptop").unwrap();
    let started = r
        .accounts
        .start_passkey_registration(&rp(), &ann, name, &browser())
        .await
        .unwrap();
    let (_, answer) = SoftKey::register(&started.public_key, ORIGIN, &Lies::default());
    assert!(matches!(
        r.accounts
            .finish_passkey_registration(
                &rp(),
                &bob,
                &started.ceremony.to_wire(),
                answer,
                &browser()
            )
            .await,
        Err(PasskeyError::Expired)
    ));
    let mut key = registered(&r.accounts, &ann).await;
    let id = r.accounts.passkeys(ann.id).await.unwrap()[0].id;
    assert!(matches!(
        r.accounts.remove_passkey(&bob, id, &browser()).await,
        Err(PasskeyError::NotFound)
    ));
    r.accounts
        .remove_passkey(&ann, id, &browser())
        .await
        .unwrap();
    let (ceremony, answer) = answered(&r.accounts, &mut key, None).await;
    assert!(matches!(
        finish(&r.accounts, &ceremony, answer).await,
        Err(PasskeyError::Rejected)
    ));
}
