//! What storage holds under the site key, for `gatehouse key rotate`: the key's fingerprint
//! (`meta`), the sealed outbox bodies and the sealed TOTP secrets (§13.1). A rotation re-encrypts every body and records the
//! new fingerprint in one transaction, on either backend, so a failure changes nothing and a
//! success leaves nothing readable only with the old key.

use super::{Result, Store};

/// Re-encrypts one outbox body (message id, sealed body) from the old key to the new:
/// `None` when it does not open with the old key.
pub type Reseal<'a> = &'a (dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + Sync);

/// Re-encrypts one user's TOTP secret (user id, sealed secret): `None` when it does not open
/// with the old key.
pub type ResealSecret<'a> = &'a (dyn Fn(i64, &[u8]) -> Option<Vec<u8>> + Sync);

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Done: the new fingerprint is stored.
    Rotated {
        /// Outbox bodies now sealed under the new key.
        resealed: usize,
        /// Bodies (and TOTP secrets) that did not open with the old key either: left as they
        /// were (the sender discards such a message when it comes to it).
        unreadable: usize,
        /// TOTP secrets now sealed under the new key.
        secrets: usize,
    },
    /// Nothing changed: the stored fingerprint is not the old key's (`None`: none stored).
    NotTheOldKey { stored: Option<String> },
}

impl Store {
    /// The fingerprint of the key the database was used with, if a server has started on it.
    pub async fn key_fingerprint(&self) -> Result<Option<String>> {
        backend!(self, s => s.key_fingerprint(), p => p.key_fingerprint().await)
    }

    /// If the stored fingerprint is `old`: every outbox body through `reseal`, every TOTP
    /// secret through `secret`, and `new` stored, in one transaction.
    pub async fn rotate_key(
        &self,
        old: &str,
        new: &str,
        reseal: Reseal<'_>,
        secret: ResealSecret<'_>,
    ) -> Result<Rotation> {
        backend!(self, s => s.rotate_key(old, new, reseal, secret), p => p.rotate_key(old, new, reseal, secret).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::seal::Sealer;
    use crate::security::secret::SecretKey;
    use crate::security::totp_seal::TotpSealer;

    use crate::store::testing::{Backend, HASH, TestDb};

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).unwrap()
    }

    /// Outbox rows as the mailer writes them, straight into the database (id, message id,
    /// sealed body).
    async fn put_outbox(db: &TestDb, rows: &[(i64, &str, Vec<u8>)]) {
        const SQL: &str = "INSERT INTO outbox (id, message_id, recipient, kind, body,
                                               created_at, expires_at, next_try_at)
                           VALUES ($1, $2, 'a@example.org', 'test', $3, 1, 9, 1)";
        match db.backend {
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(&db.location).unwrap();
                for (id, mid, body) in rows {
                    c.execute(&SQL.replace('$', "?"), rusqlite::params![id, mid, body])
                        .unwrap();
                }
            }
            Backend::Postgres => {
                let client = crate::store::testing::pg_client(db.url()).await;
                for (id, mid, body) in rows {
                    client.execute(SQL, &[id, mid, body]).await.unwrap();
                }
            }
        }
    }

    /// The outbox bodies, by id.
    async fn bodies(store: &Store) -> Vec<(i64, String, Vec<u8>)> {
        let mut out = Vec::new();
        for m in store.claim_mail(1, 1, 100).await.unwrap() {
            out.push((m.id, m.message_id, m.sealed_body));
        }
        out.sort();
        out
    }

    async fn rotation_reseals_the_outbox_and_moves_the_fingerprint(backend: Backend) {
        let db = TestDb::new(backend);
        let store = db.store();
        let (old, new) = (key(1), key(2));
        assert_eq!(store.key_fingerprint().await.unwrap(), None);
        let reseal_with = |from: &SecretKey, to: &SecretKey| {
            let (a, b) = (Sealer::new(from), Sealer::new(to));
            move |mid: &str, body: &[u8]| Some(b.seal(mid, &a.open(mid, body).ok()?))
        };
        let reseal = reseal_with(&old, &new);
        let secret_with = |from: &SecretKey, to: &SecretKey| {
            let (a, b) = (TotpSealer::new(from), TotpSealer::new(to));
            move |user_id: i64, sealed: &[u8]| a.reseal(&b, user_id, sealed)
        };
        let secret = secret_with(&old, &new);
        // No fingerprint yet: nothing to rotate from.
        assert_eq!(
            store
                .rotate_key(&old.fingerprint(), &new.fingerprint(), &reseal, &secret)
                .await
                .unwrap(),
            Rotation::NotTheOldKey { stored: None }
        );
        store.claim_key(&old.fingerprint()).await.unwrap();
        let sealer = Sealer::new(&old);
        put_outbox(
            &db,
            &[
                (1, "<1@x>", sealer.seal("<1@x>", b"first")),
                (2, "<2@x>", sealer.seal("<2@x>", b"second")),
                (3, "<3@x>", Sealer::new(&key(9)).seal("<3@x>", b"lost")),
            ],
        )
        .await;
        // One user's authenticator secret under the old key, another's under a lost one.
        let totp = crate::security::totp::TotpSecret::generate();
        let mut users = Vec::new();
        for name in ["ann", "bob"] {
            let u = crate::domain::Username::parse(name).unwrap();
            users.push(
                store
                    .create_user(&u, None, None, HASH, 1)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            );
        }
        let sealed = TotpSealer::new(&old).seal(users[0], &totp);
        assert!(store.begin_totp(users[0], sealed, 1).await.unwrap());
        let lost = TotpSealer::new(&key(9)).seal(users[1], &totp);
        assert!(store.begin_totp(users[1], lost, 1).await.unwrap());
        // A wrong old key changes nothing.
        let wrong = key(3);
        assert_eq!(
            store
                .rotate_key(
                    &wrong.fingerprint(),
                    &new.fingerprint(),
                    &reseal_with(&wrong, &new),
                    &secret_with(&wrong, &new)
                )
                .await
                .unwrap(),
            Rotation::NotTheOldKey {
                stored: Some(old.fingerprint())
            }
        );
        assert_eq!(
            store
                .rotate_key(&old.fingerprint(), &new.fingerprint(), &reseal, &secret)
                .await
                .unwrap(),
            Rotation::Rotated {
                resealed: 2,
                unreadable: 2,
                secrets: 1
            }
        );
        assert_eq!(
            store.key_fingerprint().await.unwrap(),
            Some(new.fingerprint())
        );
        // A server with the new key claims the database and opens its mail.
        assert_eq!(
            store.claim_key(&new.fingerprint()).await.unwrap(),
            new.fingerprint()
        );
        let got = bodies(&db.store()).await;
        assert_eq!(got.len(), 3);
        let (opener, stale) = (Sealer::new(&new), Sealer::new(&old));
        for (id, mid, body) in &got[..2] {
            let want: &[u8] = if *id == 1 { b"first" } else { b"second" };
            assert_eq!(opener.open(mid, body).unwrap().as_slice(), want);
            assert!(stale.open(mid, body).is_err(), "the old key opens nothing");
        }
        assert!(opener.open(&got[2].1, &got[2].2).is_err());
        let moved = store.two_step_state(users[0]).await.unwrap().totp.unwrap();
        let (new_totp, old_totp) = (TotpSealer::new(&new), TotpSealer::new(&old));
        let opened = new_totp.open(users[0], &moved.sealed_secret).unwrap();
        assert_eq!(opened.as_bytes(), totp.as_bytes());
        assert!(old_totp.open(users[0], &moved.sealed_secret).is_err());
    }

    crate::both_backends!(rotation_reseals_the_outbox_and_moves_the_fingerprint);
}
