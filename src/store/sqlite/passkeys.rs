//! SQL of passkeys and WebAuthn ceremonies on SQLite (one writer: each write is one statement
//! or one immediate transaction).

use rusqlite::{ErrorCode, OptionalExtension, params};

use super::SqliteStore;
use crate::domain::PasskeyName;
use crate::store::Result;
use crate::store::passkeys::{
    CeremonyKind, MAX_PER_USER, NewCeremony, NewPasskey, PasskeyAdded, PasskeyListing, PasskeyUse,
    StoredPasskey, TakenCeremony,
};

impl SqliteStore {
    pub fn add_passkey(&self, n: &NewPasskey) -> Result<PasskeyAdded> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let held: i64 = tx.query_row(
                "SELECT count(*) FROM passkeys WHERE user_id = ?1",
                [n.user_id],
                |r| r.get(0),
            )?;
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1)",
                [n.user_id],
                |r| r.get(0),
            )?;
            if held >= MAX_PER_USER || !exists {
                return Ok(PasskeyAdded::TooMany);
            }
            let inserted = tx.execute(
                "INSERT INTO passkeys (user_id, credential_id, user_handle, name, passkey, counter,
                                       created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    n.user_id,
                    n.credential_id,
                    n.user_handle,
                    n.name.as_str(),
                    n.passkey,
                    n.counter,
                    n.now_ms
                ],
            );
            match inserted {
                Ok(_) => {
                    let id = tx.last_insert_rowid();
                    tx.commit()?;
                    Ok(PasskeyAdded::Added(id))
                }
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    Ok(PasskeyAdded::Duplicate)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    pub fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyListing>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, credential_id, name, created_at, last_used_at FROM passkeys
                  WHERE user_id = ?1 ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([user_id], |r| {
                Ok(PasskeyListing {
                    id: r.get(0)?,
                    credential_id: r.get(1)?,
                    name: r.get(2)?,
                    created_ms: r.get(3)?,
                    last_used_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn rename_passkey(&self, user_id: i64, id: i64, name: &PasskeyName) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE passkeys SET name = ?3 WHERE id = ?2 AND user_id = ?1",
                params![user_id, id, name.as_str()],
            )? == 1)
        })
    }

    pub fn remove_passkey(&self, user_id: i64, id: i64) -> Result<Option<String>> {
        self.write(|c| {
            Ok(c.query_row(
                "DELETE FROM passkeys WHERE id = ?2 AND user_id = ?1 RETURNING name",
                params![user_id, id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    pub fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<StoredPasskey>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT p.id, p.user_id, u.username, p.user_handle, p.name, p.passkey, p.counter
                   FROM passkeys p JOIN users u ON u.id = p.user_id
                  WHERE p.credential_id = ?1 AND u.active = 1",
            )?
            .query_row([credential_id], |r| {
                Ok(StoredPasskey {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    username: r.get(2)?,
                    user_handle: r.get(3)?,
                    name: r.get(4)?,
                    passkey: r.get(5)?,
                    counter: r.get(6)?,
                })
            })
            .optional()?)
        })
    }

    pub fn record_passkey_use(&self, u: &PasskeyUse) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE passkeys SET passkey = ?2, counter = ?3, last_used_at = ?4
                  WHERE id = ?1 AND counter = ?5",
                params![u.id, u.passkey, u.new_counter, u.now_ms, u.old_counter],
            )? == 1)
        })
    }

    pub fn passkey_user_handle(&self, user_id: i64, fresh: Vec<u8>) -> Result<Vec<u8>> {
        self.read(|c| {
            let found: Option<Vec<u8>> = c
                .query_row(
                    "SELECT user_handle FROM passkeys WHERE user_id = ?1 ORDER BY id LIMIT 1",
                    [user_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(found.unwrap_or(fresh))
        })
    }

    pub fn create_ceremony(&self, n: &NewCeremony) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "DELETE FROM webauthn_ceremonies WHERE address = ?1 AND expires_at <= ?2",
                params![n.address, n.now_ms],
            )?;
            let live: i64 = tx.query_row(
                "SELECT count(*) FROM webauthn_ceremonies WHERE address = ?1",
                [&n.address],
                |r| r.get(0),
            )?;
            if live >= n.max_live {
                tx.commit()?;
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO webauthn_ceremonies
                        (hash, kind, user_id, address, state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    &n.hash[..],
                    n.kind.as_str(),
                    n.user_id,
                    n.address,
                    n.state,
                    n.now_ms,
                    n.expires_ms
                ],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    pub fn take_ceremony(&self, hash: &[u8; 32], now_ms: i64) -> Result<Option<TakenCeremony>> {
        self.write(|c| {
            let row: Option<(String, Option<i64>, String, String, i64)> = c
                .query_row(
                    "DELETE FROM webauthn_ceremonies WHERE hash = ?1
                     RETURNING kind, user_id, address, state, expires_at",
                    [&hash[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            Ok(row.and_then(|(kind, user_id, address, state, expires)| {
                (expires > now_ms).then_some(())?;
                Some(TakenCeremony {
                    kind: CeremonyKind::parse(&kind)?,
                    user_id,
                    address,
                    state,
                })
            }))
        })
    }

    pub fn purge_ceremonies(&self, now_ms: i64) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM webauthn_ceremonies WHERE expires_at <= ?1",
                [now_ms],
            )?)
        })
    }
}
