//! The storage interface's contract, on the SQLite backend: typed uniqueness outcomes, races
//! between connections, and refusal (never "no such thing") when the store cannot answer.

use super::*;

const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";

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

#[tokio::test]
async fn create_names_the_taken_field() {
    let (_d, s) = open();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_of_one_name_give_one_user() {
    // Two stores on one file: two writer connections, as two processes would have.
    let (dir, a) = open();
    let b = Store::open(&dir.path().join("users.database")).unwrap();
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

#[tokio::test]
async fn groups_are_idempotent_sorted_and_go_with_the_user() {
    let (d, s) = open();
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
    let rows: i64 = rusqlite::Connection::open(d.path().join("users.database"))
        .unwrap()
        .query_row("SELECT count(*) FROM user_groups", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the cascade deletes the memberships");
    // The old name is retired: it cannot come back (and inherit nothing in any case).
    assert_eq!(
        s.create_user(&name("ann"), None, None, HASH, 2)
            .await
            .unwrap(),
        Err(crate::store::Taken::Username)
    );
}
