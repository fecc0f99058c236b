//! The storage interface's contract, on both backends (`both_backends!`): typed uniqueness
//! outcomes, races between connections (or processes), and refusal (never "no such thing")
//! when the store cannot answer.

use super::testing::{Backend, TestDb};
use super::*;
use crate::both_backends;

both_backends!(
    create_names_the_taken_field,
    concurrent_creations_of_one_name_give_one_user,
    groups_are_idempotent_sorted_and_go_with_the_user,
);

use crate::store::testing::HASH;

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn email(s: &str) -> Option<Email> {
    Email::parse_optional(s).unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("users.database")).unwrap();
    (dir, s)
}

async fn create_names_the_taken_field(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = s
        .create_user(
            &name("ann"),
            email("ann@example.com").as_ref(),
            None,
            HASH,
            1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann.username, "ann");
    let again = s.create_user(&name("ANN"), None, None, HASH, 2).await;
    assert_eq!(again.unwrap().unwrap_err(), Taken::Username);
    let mail = email("ANN@example.COM");
    let same_mail = s
        .create_user(&name("bob"), mail.as_ref(), None, HASH, 2)
        .await;
    assert_eq!(same_mail.unwrap().unwrap_err(), Taken::Email);
    // Both taken: the username is named first, as on the sign-up form.
    let both = s
        .create_user(&name("ann"), mail.as_ref(), None, HASH, 2)
        .await;
    assert_eq!(both.unwrap().unwrap_err(), Taken::Username);
    assert_eq!(
        s.taken(&name("ann"), None).await.unwrap(),
        Some(Taken::Username)
    );
    assert_eq!(
        s.taken(&name("bob"), mail.as_ref()).await.unwrap(),
        Some(Taken::Email)
    );
    assert_eq!(s.taken(&name("bob"), None).await.unwrap(), None);
    // Nothing was written by the refused creations.
    assert!(s.credentials("bob").await.unwrap().is_none());
}

async fn concurrent_creations_of_one_name_give_one_user(backend: Backend) {
    // Two stores on one database: two writer connections, as two processes would have.
    let db = TestDb::new(backend);
    let (a, b) = (db.store(), db.store());
    for i in 0..20 {
        let n = name(&format!("racer{i}"));
        let (x, y) = tokio::join!(
            a.create_user(&n, None, None, HASH, 1),
            b.create_user(&n, None, None, HASH, 1)
        );
        let outcomes = [x.unwrap(), y.unwrap()];
        let created = outcomes.iter().filter(|o| o.is_ok()).count();
        let taken = outcomes
            .iter()
            .filter(|o| matches!(o, Err(Taken::Username)))
            .count();
        assert_eq!((created, taken), (1, 1), "round {i}: {outcomes:?}");
    }
}

#[tokio::test]
async fn an_unreachable_store_refuses_instead_of_answering_none() {
    let (dir, s) = open();
    s.create_user(&name("alice"), None, None, HASH, 1)
        .await
        .unwrap()
        .unwrap();
    // The file goes away before any read connection was opened: every read must fail, not
    // report "no such session" or "no such user" (which would let a sign-in skip its lock
    // forgiveness check or a page treat a visitor as signed out by accident).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    assert!(s.session(&[7; 32]).await.is_err());
    assert!(s.credentials("alice").await.is_err());
    assert!(s.credentials_by_id(1).await.is_err());
    assert!(!s.healthy().await);
}

async fn groups_are_idempotent_sorted_and_go_with_the_user(b: Backend) {
    let db = TestDb::new(b);
    let s = db.store();
    let ann = s
        .create_user(&name("ann"), None, None, HASH, 1)
        .await
        .unwrap()
        .unwrap();
    let g = |n: &str| crate::domain::GroupName::parse(n).unwrap();
    let change = |changed| {
        Some(GroupChange {
            user_id: ann.id,
            changed,
        })
    };
    assert_eq!(
        s.add_group(&name("ann"), &g("ops")).await.unwrap(),
        change(true)
    );
    assert_eq!(
        s.add_group(&name("ann"), &g("ops")).await.unwrap(),
        change(false)
    );
    assert_eq!(
        s.add_group(&name("ann"), &g("admin")).await.unwrap(),
        change(true)
    );
    assert_eq!(s.add_group(&name("bob"), &g("ops")).await.unwrap(), None);
    assert_eq!(
        s.groups_of(ann.id).await.unwrap(),
        vec![g("admin"), g("ops")]
    );
    assert_eq!(
        s.remove_group(&name("ann"), &g("ops")).await.unwrap(),
        change(true)
    );
    assert_eq!(
        s.remove_group(&name("ann"), &g("ops")).await.unwrap(),
        change(false)
    );
    assert_eq!(s.remove_group(&name("bob"), &g("ops")).await.unwrap(), None);
    assert_eq!(s.groups_of(ann.id).await.unwrap(), vec![g("admin")]);

    s.delete_user(&name("ann")).await.unwrap().unwrap();
    // A new user with the old id's place: the cascade deleted the memberships.
    let bob = s
        .create_user(&name("bob"), None, None, HASH, 2)
        .await
        .unwrap()
        .unwrap();
    assert!(s.groups_of(ann.id).await.unwrap().is_empty());
    assert!(s.groups_of(bob.id).await.unwrap().is_empty());
    // The old name is retired: it cannot come back (and inherit nothing in any case).
    assert_eq!(
        s.create_user(&name("ann"), None, None, HASH, 2)
            .await
            .unwrap(),
        Err(crate::store::Taken::Username)
    );
}
