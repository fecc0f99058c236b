//! SQLite's part of `gatehouse key rotate` (see [`crate::store::keys`]): one write
//! transaction, which also keeps the server's sender from claiming a message meanwhile.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::store::Result;
use crate::store::keys::{Reseal, ResealSecret, Rotation};

const FINGERPRINT: &str = "SELECT value FROM meta WHERE name = 'key_fingerprint'";

impl SqliteStore {
    pub fn key_fingerprint(&self) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_row(FINGERPRINT, [], |r| r.get(0)).optional()?))
    }

    /// See [`crate::store::Store::rotate_key`].
    pub fn rotate_key(
        &self,
        old: &str,
        new: &str,
        reseal: Reseal<'_>,
        secret: ResealSecret<'_>,
    ) -> Result<Rotation> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored: Option<String> = tx.query_row(FINGERPRINT, [], |r| r.get(0)).optional()?;
            if stored.as_deref() != Some(old) {
                return Ok(Rotation::NotTheOldKey { stored });
            }
            let (mut resealed, mut unreadable) = (0, 0);
            {
                let mut read = tx.prepare("SELECT id, message_id, body FROM outbox ORDER BY id")?;
                let mut write = tx.prepare("UPDATE outbox SET body = ?2 WHERE id = ?1")?;
                let mut rows = read.query([])?;
                while let Some(row) = rows.next()? {
                    let id: i64 = row.get(0)?;
                    let message_id: String = row.get(1)?;
                    let body: Vec<u8> = row.get(2)?;
                    match reseal(&message_id, &body) {
                        Some(sealed) => {
                            write.execute(params![id, sealed])?;
                            resealed += 1;
                        }
                        None => unreadable += 1,
                    }
                }
            }
            let mut secrets = 0;
            {
                let mut read = tx.prepare("SELECT user_id, secret FROM totp ORDER BY user_id")?;
                let mut write = tx.prepare("UPDATE totp SET secret = ?2 WHERE user_id = ?1")?;
                let mut rows = read.query([])?;
                while let Some(row) = rows.next()? {
                    let user_id: i64 = row.get(0)?;
                    let sealed: Vec<u8> = row.get(1)?;
                    match secret(user_id, &sealed) {
                        Some(sealed) => {
                            write.execute(params![user_id, sealed])?;
                            secrets += 1;
                        }
                        None => unreadable += 1,
                    }
                }
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'key_fingerprint'",
                [new],
            )?;
            tx.commit()?;
            Ok(Rotation::Rotated {
                resealed,
                unreadable,
                secrets,
            })
        })
    }
}
