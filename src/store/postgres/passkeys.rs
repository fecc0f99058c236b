//! SQL of passkeys and WebAuthn ceremonies on PostgreSQL, as `sqlite/passkeys.rs`. Several
//! instances write at once: adding a passkey locks its user's row (so the per-user bound
//! holds), a ceremony's per-address bound is counted under an advisory lock on the address,
//! taking a ceremony is one `DELETE … RETURNING` (of two instances, one gets the row), and a
//! use is recorded by one update conditional on the counter read.

use super::PgStore;
use super::outbox::lock;
use crate::domain::PasskeyName;
use crate::store::Result;
use crate::store::passkeys::{
    CeremonyKind, MAX_PER_USER, NewCeremony, NewPasskey, PasskeyAdded, PasskeyListing, PasskeyUse,
    StoredPasskey, TakenCeremony,
};

impl PgStore {
    pub async fn add_passkey(&self, n: NewPasskey) -> Result<PasskeyAdded> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare_cached("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .await?;
        if tx.query_opt(&stmt, &[&n.user_id]).await?.is_none() {
            return Ok(PasskeyAdded::TooMany);
        }
        let stmt = tx
            .prepare_cached("SELECT count(*) FROM passkeys WHERE user_id = $1")
            .await?;
        let held: i64 = tx.query_one(&stmt, &[&n.user_id]).await?.get(0);
        if held >= MAX_PER_USER {
            return Ok(PasskeyAdded::TooMany);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO passkeys (user_id, credential_id, user_handle, name, passkey, counter,
                                       created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (credential_id) DO NOTHING RETURNING id",
            )
            .await?;
        let row = tx
            .query_opt(
                &stmt,
                &[
                    &n.user_id,
                    &n.credential_id,
                    &n.user_handle,
                    &n.name.as_str(),
                    &n.passkey,
                    &n.counter,
                    &n.now_ms,
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(PasskeyAdded::Duplicate);
        };
        tx.commit().await?;
        Ok(PasskeyAdded::Added(row.get(0)))
    }

    pub async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyListing>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, credential_id, name, created_at, last_used_at FROM passkeys
                  WHERE user_id = $1 ORDER BY created_at, id",
            )
            .await?;
        let rows = client.query(&stmt, &[&user_id]).await?;
        Ok(rows
            .iter()
            .map(|r| PasskeyListing {
                id: r.get(0),
                credential_id: r.get(1),
                name: r.get(2),
                created_ms: r.get(3),
                last_used_ms: r.get(4),
            })
            .collect())
    }

    pub async fn rename_passkey(&self, user_id: i64, id: i64, name: PasskeyName) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("UPDATE passkeys SET name = $3 WHERE id = $2 AND user_id = $1")
            .await?;
        Ok(client
            .execute(&stmt, &[&user_id, &id, &name.as_str()])
            .await?
            == 1)
    }

    pub async fn remove_passkey(&self, user_id: i64, id: i64) -> Result<Option<String>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM passkeys WHERE id = $2 AND user_id = $1 RETURNING name")
            .await?;
        let row = client.query_opt(&stmt, &[&user_id, &id]).await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn passkey_by_credential(
        &self,
        credential_id: Vec<u8>,
    ) -> Result<Option<StoredPasskey>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT p.id, p.user_id, u.username, p.user_handle, p.name, p.passkey, p.counter
                   FROM passkeys p JOIN users u ON u.id = p.user_id
                  WHERE p.credential_id = $1 AND u.active",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&credential_id]).await?;
        Ok(row.map(|r| StoredPasskey {
            id: r.get(0),
            user_id: r.get(1),
            username: r.get(2),
            user_handle: r.get(3),
            name: r.get(4),
            passkey: r.get(5),
            counter: r.get(6),
        }))
    }

    pub async fn record_passkey_use(&self, u: PasskeyUse) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE passkeys SET passkey = $2, counter = $3, last_used_at = $4
                  WHERE id = $1 AND counter = $5",
            )
            .await?;
        Ok(client
            .execute(
                &stmt,
                &[&u.id, &u.passkey, &u.new_counter, &u.now_ms, &u.old_counter],
            )
            .await?
            == 1)
    }

    pub async fn passkey_user_handle(&self, user_id: i64, fresh: Vec<u8>) -> Result<Vec<u8>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_handle FROM passkeys WHERE user_id = $1 ORDER BY id LIMIT 1",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&user_id]).await?;
        Ok(row.map_or(fresh, |r| r.get(0)))
    }

    pub async fn create_ceremony(&self, n: NewCeremony) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock(&tx, &format!("gatehouse:ceremonies:{}", n.address)).await?;
        let stmt = tx
            .prepare_cached(
                "DELETE FROM webauthn_ceremonies WHERE address = $1 AND expires_at <= $2",
            )
            .await?;
        tx.execute(&stmt, &[&n.address, &n.now_ms]).await?;
        let stmt = tx
            .prepare_cached("SELECT count(*) FROM webauthn_ceremonies WHERE address = $1")
            .await?;
        let live: i64 = tx.query_one(&stmt, &[&n.address]).await?.get(0);
        if live >= n.max_live {
            tx.commit().await?;
            return Ok(false);
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO webauthn_ceremonies
                        (hash, kind, user_id, address, state, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &&n.hash[..],
                &n.kind.as_str(),
                &n.user_id,
                &n.address,
                &n.state,
                &n.now_ms,
                &n.expires_ms,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn take_ceremony(
        &self,
        hash: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<TakenCeremony>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM webauthn_ceremonies WHERE hash = $1
                 RETURNING kind, user_id, address, state, expires_at",
            )
            .await?;
        let Some(r) = client.query_opt(&stmt, &[&&hash[..]]).await? else {
            return Ok(None);
        };
        let expires: i64 = r.get(4);
        if expires <= now_ms {
            return Ok(None);
        }
        let kind: &str = r.get(0);
        Ok(CeremonyKind::parse(kind).map(|kind| TakenCeremony {
            kind,
            user_id: r.get(1),
            address: r.get(2),
            state: r.get(3),
        }))
    }

    pub async fn purge_ceremonies(&self, now_ms: i64) -> Result<usize> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .await?;
        Ok(client.execute(&stmt, &[&now_ms]).await? as usize)
    }
}
