//! PostgreSQL's part of `gatehouse key rotate` (see [`crate::store::keys`]): one transaction
//! holding the fingerprint's row and the outbox, so no instance claims, adds or deletes a
//! message while its body is being replaced.

use super::PgStore;
use crate::store::Result;
use crate::store::keys::{Reseal, Rotation};

impl PgStore {
    pub async fn key_fingerprint(&self) -> Result<Option<String>> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT value FROM meta WHERE name = 'key_fingerprint'", &[])
            .await?
            .map(|r| r.get(0)))
    }

    /// See [`crate::store::Store::rotate_key`].
    pub async fn rotate_key(&self, old: &str, new: &str, reseal: Reseal<'_>) -> Result<Rotation> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stored: Option<String> = tx
            .query_opt(
                "SELECT value FROM meta WHERE name = 'key_fingerprint' FOR UPDATE",
                &[],
            )
            .await?
            .map(|r| r.get(0));
        if stored.as_deref() != Some(old) {
            return Ok(Rotation::NotTheOldKey { stored });
        }
        tx.batch_execute("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        let rows = tx
            .query("SELECT id, message_id, body FROM outbox ORDER BY id", &[])
            .await?;
        let (mut ids, mut bodies) = (Vec::new(), Vec::new());
        let mut unreadable = 0;
        for row in &rows {
            match reseal(row.get(1), row.get(2)) {
                Some(sealed) => {
                    ids.push(row.get::<_, i64>(0));
                    bodies.push(sealed);
                }
                None => unreadable += 1,
            }
        }
        tx.execute(
            "UPDATE outbox o SET body = t.body
             FROM unnest($1::bigint[], $2::bytea[]) AS t(id, body) WHERE o.id = t.id",
            &[&ids, &bodies],
        )
        .await?;
        tx.execute(
            "UPDATE meta SET value = $1 WHERE name = 'key_fingerprint'",
            &[&new],
        )
        .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            resealed: ids.len(),
            unreadable,
        })
    }
}
