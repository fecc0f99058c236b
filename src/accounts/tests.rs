//! The account rules without HTTP: a temp-file store, a tiny Argon2 cost and a
//! [`ManualClock`] that the tests move (docs/behaviour.md §2–§4).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::security::faillock::FailLock;
use crate::security::password::{Kdf, KdfParams};
use crate::security::throttle::AddressGuard;
use crate::store::{Taken, User};

const PASSWORD: &str = "correct horse battery";
const WINDOW: Duration = Duration::from_secs(600);
const ATTEMPTS: u32 = 3;
const START: i64 = 1_700_000_000_000;

/// Remembers the (kind, outcome) of every audit event.
#[derive(Default)]
struct Trail(Mutex<Vec<(&'static str, &'static str)>>);

impl AuditSink for Trail {
    fn record(&self, e: AuditEvent) {
        self.0.lock().unwrap().push((e.event, e.outcome));
    }
    fn count(&self, _: &'static str, _: &'static str) {}
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    trail: Arc<Trail>,
    accounts: Accounts,
}

fn tiny(t: u32) -> KdfPool {
    KdfPool::new(Kdf::new(KdfParams { m_kib: 8, t, p: 1 }).unwrap(), 1, 8)
}

fn accounts_over(store: &Store, clock: &Arc<ManualClock>, trail: &Arc<Trail>, t: u32) -> Accounts {
    let deps = Deps {
        store: store.clone(),
        kdf: tiny(t),
        clock: clock.clone(),
        lock: Arc::new(AttemptLock::Memory(FailLock::new(ATTEMPTS, WINDOW, 100))),
        device_lock: Arc::new(AttemptLock::Memory(FailLock::new(ATTEMPTS, WINDOW, 100))),
        key: SecretKey::from_bytes(&[9; 32]).unwrap(),
        sessions: SessionPolicy {
            secure: false,
            idle: Duration::from_secs(3600),
            max: Duration::from_secs(86_400),
            domain: None,
        },
        audit: trail.clone(),
    };
    let limits = AddressLimits::Memory(AddressGuard::new(1000, WINDOW, 1000, 1000));
    Accounts::new(deps, Arc::new(limits))
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_ms(START)));
    let trail = Arc::new(Trail::default());
    let accounts = accounts_over(&store, &clock, &trail, 1);
    Rig {
        _dir: dir,
        store,
        clock,
        trail,
        accounts,
    }
}

fn plain(password: &str) -> PasswordInput<'_> {
    PasswordInput::Plain {
        password,
        repeat: None,
    }
}

fn browser() -> Client {
    Client {
        addr: Some("192.0.2.1".parse().unwrap()),
        ip: Some("192.0.2.1".into()),
        ..Client::default()
    }
}

async fn sign_up(accounts: &Accounts, name: &str, email: &str) -> Result<SignedUp, SignUpError> {
    let input = SignUpInput {
        username: name,
        email,
        full_name: "",
        password: plain(PASSWORD),
    };
    accounts.sign_up(input, &browser(), None).await
}

async fn user(accounts: &Accounts, name: &str) -> User {
    sign_up(accounts, name, "").await.unwrap().user
}

async fn sign_in(
    accounts: &Accounts,
    name: &str,
    password: &str,
    client: &Client,
) -> Result<SignedIn, SignInError> {
    accounts.sign_in(name, plain(password), client, None).await
}

/// The right password from a fresh browser signs `name` in.
async fn signs_in(accounts: &Accounts, name: &str) -> SignedIn {
    sign_in(accounts, name, PASSWORD, &browser()).await.unwrap()
}

/// The right password from an unknown browser meets the lock; how long it says to wait.
async fn locked_out(accounts: &Accounts, name: &str) -> Duration {
    match sign_in(accounts, name, PASSWORD, &browser()).await {
        Err(SignInError::Locked { retry_after }) => retry_after,
        other => panic!("expected locked, got {other:?}"),
    }
}

/// Wrong passwords until the name is locked; how many it took.
async fn lock_out(accounts: &Accounts, name: &str) -> u32 {
    for n in 1..=ATTEMPTS + 1 {
        match sign_in(accounts, name, "wrong password!", &browser()).await {
            Err(SignInError::Failed) => {}
            Err(SignInError::Locked { .. }) => return n,
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("never locked");
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_fail_alike() {
    let r = rig();
    user(&r.accounts, "alice").await;
    let unknown = sign_in(&r.accounts, "nobody", PASSWORD, &browser()).await;
    assert!(matches!(unknown, Err(SignInError::Failed)), "{unknown:?}");
    let wrong = sign_in(&r.accounts, "alice", "not the password", &browser()).await;
    assert!(matches!(wrong, Err(SignInError::Failed)), "{wrong:?}");
    let right = signs_in(&r.accounts, "alice").await;
    assert_eq!(right.username, "alice");
    let trail = r.trail.0.lock().unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|e| **e == ("sign_in", "failed"))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_locked_name_refuses_even_the_right_password_until_the_window_passes() {
    let r = rig();
    user(&r.accounts, "alice").await;
    let tries = lock_out(&r.accounts, "alice").await;
    assert_eq!(
        tries,
        ATTEMPTS + 1,
        "the lock holds after {ATTEMPTS} failures"
    );
    let retry_after = locked_out(&r.accounts, "alice").await;
    assert!(retry_after <= WINDOW && retry_after > Duration::ZERO);
    r.clock.advance(WINDOW + Duration::from_secs(1));
    signs_in(&r.accounts, "alice").await;
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in() {
    let r = rig();
    user(&r.accounts, "alice").await;
    let name = Username::parse("alice").unwrap();
    r.store
        .set_active(&name, false, START)
        .await
        .unwrap()
        .unwrap();
    let outcome = sign_in(&r.accounts, "alice", PASSWORD, &browser()).await;
    assert!(matches!(outcome, Err(SignInError::Failed)), "{outcome:?}");
}

#[tokio::test]
async fn a_cost_change_rehashes_on_the_next_sign_in() {
    let r = rig();
    user(&r.accounts, "alice").await;
    let before = r
        .store
        .credentials("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let stronger = accounts_over(&r.store, &r.clock, &r.trail, 2);
    signs_in(&stronger, "alice").await;
    // The re-hash runs in the background: wait for the write (bounded, no timing assumed).
    let mut after = before.clone();
    for _ in 0..1000 {
        after = r
            .store
            .credentials("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash;
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(after, before);
    assert!(!stronger.kdf.kdf().needs_rehash(&after));
    // The new hash still takes the same password.
    signs_in(&stronger, "alice").await;
}

#[tokio::test]
async fn the_owners_device_passes_a_name_locked_by_someone_else() {
    let r = rig();
    user(&r.accounts, "alice").await;
    let signed_in = signs_in(&r.accounts, "alice").await;
    lock_out(&r.accounts, "alice").await;
    let owner = Client {
        device: Some(signed_in.device_token),
        ..browser()
    };
    sign_in(&r.accounts, "alice", PASSWORD, &owner)
        .await
        .unwrap();
    // Everyone else still meets the lock.
    locked_out(&r.accounts, "alice").await;
}

#[tokio::test]
async fn sign_up_reports_every_invalid_field() {
    let r = rig();
    let input = SignUpInput {
        username: "a b",
        email: "not-an-email",
        full_name: "",
        password: PasswordInput::Missing,
    };
    let outcome = r.accounts.sign_up(input, &browser(), None).await;
    let Err(SignUpError::Invalid(errors)) = outcome else {
        panic!("{outcome:?}");
    };
    let fields: Vec<_> = errors.0.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, ["username", "password", "email"]);
    assert_eq!(errors.0[1].1, Problem::MissingPassword);

    let differ = SignUpInput {
        username: "alice",
        email: "",
        full_name: "",
        password: PasswordInput::Plain {
            password: PASSWORD,
            repeat: Some("something else"),
        },
    };
    let outcome = r.accounts.sign_up(differ, &browser(), None).await;
    let Err(SignUpError::Invalid(errors)) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(errors.0, [("password_repeat", Problem::PasswordsDiffer)]);
    assert!(r.store.credentials("alice").await.unwrap().is_none());
}

#[tokio::test]
async fn a_taken_username_or_email_is_an_outcome() {
    let r = rig();
    sign_up(&r.accounts, "alice", "alice@example.com")
        .await
        .unwrap();
    let name = sign_up(&r.accounts, "ALICE", "").await;
    assert!(
        matches!(name, Err(SignUpError::Taken(Taken::Username))),
        "{name:?}"
    );
    let email = sign_up(&r.accounts, "bob", "alice@example.com").await;
    assert!(
        matches!(email, Err(SignUpError::Taken(Taken::Email))),
        "{email:?}"
    );
}

#[tokio::test]
async fn two_sign_ups_of_one_name_create_one_user() {
    let r = rig();
    let (a, b) = tokio::join!(
        sign_up(&r.accounts, "alice", ""),
        sign_up(&r.accounts, "alice", "")
    );
    let created = [&a, &b].iter().filter(|o| o.is_ok()).count();
    let taken = [&a, &b]
        .iter()
        .filter(|o| matches!(o, Err(SignUpError::Taken(Taken::Username))))
        .count();
    assert_eq!((created, taken), (1, 1), "{a:?} {b:?}");
}

#[tokio::test]
async fn a_sign_up_with_a_session_signs_in() {
    let r = rig();
    let input = SignUpInput {
        username: "alice",
        email: "",
        full_name: "",
        password: plain(PASSWORD),
    };
    let created = r
        .accounts
        .sign_up(input, &browser(), Some(None))
        .await
        .unwrap();
    let signed_in = created.signed_in.expect("a session");
    assert_eq!(signed_in.username, "alice");
    let live = r
        .store
        .sessions_of(created.user.id, START, 3_600_000)
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
}

#[tokio::test]
async fn wrong_current_passwords_count_toward_the_lock() {
    let r = rig();
    let alice = user(&r.accounts, "alice").await;
    let mut refused_after = None;
    for n in 1..=ATTEMPTS + 1 {
        let outcome = r
            .accounts
            .change_password(
                &alice,
                plain("wrong password!"),
                plain("a new password"),
                &browser(),
            )
            .await;
        match outcome {
            Err(ChangeError::WrongPassword) => {}
            Err(ChangeError::Locked { .. }) => {
                refused_after = Some(n);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused_after, Some(ATTEMPTS + 1));
    // The same lock guards sign-in.
    locked_out(&r.accounts, "alice").await;
}

#[tokio::test]
async fn the_right_current_password_ends_every_other_session() {
    let r = rig();
    let alice = user(&r.accounts, "alice").await;
    for _ in 0..2 {
        signs_in(&r.accounts, "alice").await;
    }
    let idle = 3_600_000;
    assert_eq!(
        r.store
            .sessions_of(alice.id, START, idle)
            .await
            .unwrap()
            .len(),
        2
    );
    r.clock.advance(Duration::from_secs(1));
    let changed = r
        .accounts
        .change_password(&alice, plain(PASSWORD), plain("a new password"), &browser())
        .await
        .unwrap();
    let live = r
        .store
        .sessions_of(alice.id, START + 1_000, idle)
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "only the new session remains");
    assert_eq!(changed.username, "alice");
    let old = sign_in(&r.accounts, "alice", PASSWORD, &browser()).await;
    assert!(matches!(old, Err(SignInError::Failed)), "{old:?}");
    sign_in(&r.accounts, "alice", "a new password", &browser())
        .await
        .unwrap();
}

#[tokio::test]
async fn sign_out_and_revoke_end_sessions() {
    let r = rig();
    let alice = user(&r.accounts, "alice").await;
    let first = signs_in(&r.accounts, "alice").await;
    for _ in 0..2 {
        signs_in(&r.accounts, "alice").await;
    }
    let idle = 3_600_000;
    let live = r.store.sessions_of(alice.id, START, idle).await.unwrap();
    assert_eq!(live.len(), 3);
    r.accounts
        .sign_out(Some(first.session.hash()), Some(&alice), &browser())
        .await
        .unwrap();
    let live = r.store.sessions_of(alice.id, START, idle).await.unwrap();
    assert_eq!(live.len(), 2);
    let keep = live[0].id;
    assert!(
        r.accounts
            .revoke_session(&alice, live[1].id, &browser())
            .await
            .unwrap()
    );
    assert!(
        !r.accounts
            .revoke_session(&alice, live[1].id, &browser())
            .await
            .unwrap()
    );
    signs_in(&r.accounts, "alice").await;
    let n = r
        .accounts
        .revoke_other_sessions(&alice, keep, &browser())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let trail = r.trail.0.lock().unwrap();
    assert!(trail.contains(&("sign_out", "ok")));
    assert_eq!(
        trail
            .iter()
            .filter(|e| **e == ("session_revoke", "ok"))
            .count(),
        2
    );
}

#[path = "passkeys_tests.rs"]
mod passkeys;
