//! The passkey and ceremony storage contract, on both backends.

use super::passkeys::*;
use super::testing::{Backend, TestDb, user_id as user};
use super::*;
use crate::both_backends;
use crate::domain::PasskeyName;

both_backends!(
    passkeys_are_owned_listed_renamed_and_removed,
    a_credential_id_is_registered_once,
    a_use_is_recorded_only_from_the_counter_read,
    passkeys_go_with_the_user,
    a_ceremony_is_taken_once_across_stores,
    an_expired_ceremony_is_refused_and_purged,
    ceremonies_are_bounded_per_address,
);

fn key(user_id: i64, cred: &[u8], name: &str, now_ms: i64) -> NewPasskey {
    NewPasskey {
        user_id,
        credential_id: cred.to_vec(),
        user_handle: vec![7; 16],
        name: PasskeyName::parse(name).unwrap(),
        passkey: format!("{{\"cred\":{cred:?}}}"),
        counter: 0,
        now_ms,
    }
}

fn added(a: PasskeyAdded) -> i64 {
    match a {
        PasskeyAdded::Added(id) => id,
        other => panic!("not added: {other:?}"),
    }
}

async fn passkeys_are_owned_listed_renamed_and_removed(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    assert_eq!(
        s.passkey_user_handle(ann, vec![1; 16]).await.unwrap(),
        vec![1; 16]
    );
    let laptop = added(s.add_passkey(key(ann, b"c1", "laptop", 10)).await.unwrap());
    let phone = added(s.add_passkey(key(ann, b"c2", "phone", 20)).await.unwrap());
    // The handle of the first passkey is the user's from now on.
    assert_eq!(
        s.passkey_user_handle(ann, vec![1; 16]).await.unwrap(),
        vec![7; 16]
    );
    let list = s.passkeys_of(ann).await.unwrap();
    assert_eq!(
        list,
        vec![
            PasskeyListing {
                id: laptop,
                credential_id: b"c1".to_vec(),
                name: "laptop".into(),
                created_ms: 10,
                last_used_ms: None
            },
            PasskeyListing {
                id: phone,
                credential_id: b"c2".to_vec(),
                name: "phone".into(),
                created_ms: 20,
                last_used_ms: None
            },
        ]
    );
    // Another user can neither rename nor remove them.
    let other = PasskeyName::parse("mine").unwrap();
    assert!(!s.rename_passkey(bob, laptop, other.clone()).await.unwrap());
    assert_eq!(s.remove_passkey(bob, laptop).await.unwrap(), None);
    assert!(s.rename_passkey(ann, laptop, other).await.unwrap());
    assert_eq!(s.passkeys_of(ann).await.unwrap()[0].name, "mine");
    assert_eq!(
        s.remove_passkey(ann, laptop).await.unwrap().as_deref(),
        Some("mine")
    );
    assert_eq!(s.remove_passkey(ann, laptop).await.unwrap(), None);
    // Removing the last one is allowed.
    assert_eq!(
        s.remove_passkey(ann, phone).await.unwrap().as_deref(),
        Some("phone")
    );
    assert!(s.passkeys_of(ann).await.unwrap().is_empty());
    assert!(s.passkeys_of(bob).await.unwrap().is_empty());
}

async fn a_credential_id_is_registered_once(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    added(s.add_passkey(key(ann, b"same", "a", 1)).await.unwrap());
    assert_eq!(
        s.add_passkey(key(bob, b"same", "b", 2)).await.unwrap(),
        PasskeyAdded::Duplicate
    );
    assert_eq!(
        s.add_passkey(key(ann, b"same", "c", 2)).await.unwrap(),
        PasskeyAdded::Duplicate
    );
    for i in 1..MAX_PER_USER {
        added(
            s.add_passkey(key(ann, format!("k{i}").as_bytes(), "k", 3))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        s.add_passkey(key(ann, b"one-more", "x", 4)).await.unwrap(),
        PasskeyAdded::TooMany
    );
    assert_eq!(
        s.add_passkey(key(9999, b"nobody", "x", 4)).await.unwrap(),
        PasskeyAdded::TooMany
    );
    let found = s
        .passkey_by_credential(b"same".to_vec())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user_id, found.username.as_str(), found.name.as_str()),
        (ann, "ann", "a")
    );
    assert_eq!(found.user_handle, vec![7; 16]);
    assert_eq!(
        s.passkey_by_credential(b"unknown".to_vec()).await.unwrap(),
        None
    );
}

async fn a_use_is_recorded_only_from_the_counter_read(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = user(&s, "ann").await;
    let id = added(s.add_passkey(key(ann, b"c", "a", 1)).await.unwrap());
    let used = |old, new, now| PasskeyUse {
        id,
        old_counter: old,
        new_counter: new,
        passkey: format!("{{\"n\":{new}}}"),
        now_ms: now,
    };
    assert!(s.record_passkey_use(used(0, 5, 100)).await.unwrap());
    // A second use computed from the same stored counter (a race, or a replay) is not recorded.
    assert!(!s.record_passkey_use(used(0, 6, 101)).await.unwrap());
    let found = s
        .passkey_by_credential(b"c".to_vec())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.counter, found.passkey.as_str()), (5, "{\"n\":5}"));
    assert_eq!(s.passkeys_of(ann).await.unwrap()[0].last_used_ms, Some(100));
    assert!(s.record_passkey_use(used(5, 6, 102)).await.unwrap());
    assert_eq!(s.passkeys_of(ann).await.unwrap()[0].last_used_ms, Some(102));
}

async fn passkeys_go_with_the_user(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = user(&s, "ann").await;
    added(s.add_passkey(key(ann, b"c", "a", 1)).await.unwrap());
    s.set_active(&Username::parse("ann").unwrap(), false, 2)
        .await
        .unwrap();
    // A disabled user's passkey opens nothing.
    assert_eq!(s.passkey_by_credential(b"c".to_vec()).await.unwrap(), None);
    s.delete_user(&Username::parse("ann").unwrap())
        .await
        .unwrap();
    assert!(s.passkeys_of(ann).await.unwrap().is_empty());
}

fn ceremony(hash: u8, address: &str, now_ms: i64, max_live: i64) -> NewCeremony {
    NewCeremony {
        hash: [hash; 32],
        kind: CeremonyKind::Authenticate,
        user_id: None,
        address: address.into(),
        state: format!("{{\"c\":{hash}}}"),
        now_ms,
        expires_ms: now_ms + 300_000,
        max_live,
    }
}

async fn a_ceremony_is_taken_once_across_stores(b: Backend) {
    let db = TestDb::new(b);
    let (one, two) = (db.store(), db.store());
    let ann = user(&one, "ann").await;
    let mut reg = ceremony(1, "192.0.2.1", 10, 20);
    reg.kind = CeremonyKind::Register;
    reg.user_id = Some(ann);
    assert!(one.create_ceremony(reg).await.unwrap());
    let (a, b2) = tokio::join!(
        one.take_ceremony([1; 32], 11),
        two.take_ceremony([1; 32], 11)
    );
    let (a, b2) = (a.unwrap(), b2.unwrap());
    assert!(
        a.is_some() != b2.is_some(),
        "taken exactly once: {a:?} {b2:?}"
    );
    let taken = a.or(b2).unwrap();
    assert_eq!(
        taken,
        TakenCeremony {
            kind: CeremonyKind::Register,
            user_id: Some(ann),
            address: "192.0.2.1".into(),
            state: "{\"c\":1}".into(),
        }
    );
    assert_eq!(one.take_ceremony([1; 32], 12).await.unwrap(), None);
    assert_eq!(two.take_ceremony([2; 32], 12).await.unwrap(), None);
}

async fn an_expired_ceremony_is_refused_and_purged(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    assert!(
        s.create_ceremony(ceremony(1, "192.0.2.1", 0, 20))
            .await
            .unwrap()
    );
    assert_eq!(s.take_ceremony([1; 32], 300_000).await.unwrap(), None);
    assert!(
        s.create_ceremony(ceremony(2, "192.0.2.1", 0, 20))
            .await
            .unwrap()
    );
    assert!(
        s.create_ceremony(ceremony(3, "192.0.2.1", 100, 20))
            .await
            .unwrap()
    );
    assert_eq!(s.purge_ceremonies(300_050).await.unwrap(), 1);
    assert!(s.take_ceremony([3; 32], 300_050).await.unwrap().is_some());
}

async fn ceremonies_are_bounded_per_address(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    for i in 0..3 {
        assert!(
            s.create_ceremony(ceremony(i, "2001:db8::/64", 0, 3))
                .await
                .unwrap()
        );
    }
    assert!(
        !s.create_ceremony(ceremony(9, "2001:db8::/64", 1, 3))
            .await
            .unwrap()
    );
    assert_eq!(s.take_ceremony([9; 32], 2).await.unwrap(), None);
    // Another address is not held up.
    assert!(
        s.create_ceremony(ceremony(10, "192.0.2.1", 1, 3))
            .await
            .unwrap()
    );
    // Taking one makes room; so does expiry.
    assert!(s.take_ceremony([0; 32], 2).await.unwrap().is_some());
    assert!(
        s.create_ceremony(ceremony(11, "2001:db8::/64", 2, 3))
            .await
            .unwrap()
    );
    assert!(
        !s.create_ceremony(ceremony(12, "2001:db8::/64", 3, 3))
            .await
            .unwrap()
    );
    assert!(
        s.create_ceremony(ceremony(13, "2001:db8::/64", 300_001, 3))
            .await
            .unwrap()
    );
}
