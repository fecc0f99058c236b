//! PostgreSQL's part of `gatehouse key rotate` (see [`crate::store::keys`]): one transaction
//! holding the fingerprint's row and the outbox, so no instance claims, adds or deletes a
//! message while its body is being replaced.

use super::PgStore;
use crate::store::Result;
use crate::store::keys::{Reseal, ResealSecret, Rotation};

impl PgStore {
    pub async fn key_fingerprint(&self) -> Result<Option<String>> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT value FROM meta WHERE name = 'key_fingerprint'", &[])
            .await?
            .map(|r| r.get(0)))
    }

    /// See [`crate::store::Store::rotate_key`].
    pub async fn rotate_key(
        &self,
        old: &str,
        new: &str,
        reseal: Reseal<'_>,
        secret: ResealSecret<'_>,
    ) -> Result<Rotation> {
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
        // Every TOTP secret, its rows locked: a set-up or turn-off meanwhile waits.
        let rows = tx
            .query(
                "SELECT user_id, secret FROM totp ORDER BY user_id FOR UPDATE",
                &[],
            )
            .await?;
        let (mut users, mut secrets) = (Vec::new(), Vec::new());
        for row in &rows {
            match secret(row.get(0), row.get(1)) {
                Some(sealed) => {
                    users.push(row.get::<_, i64>(0));
                    secrets.push(sealed);
                }
                None => unreadable += 1,
            }
        }
        tx.execute(
            "UPDATE totp t SET secret = s.secret
             FROM unnest($1::bigint[], $2::bytea[]) AS s(user_id, secret)
             WHERE t.user_id = s.user_id",
            &[&users, &secrets],
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
            secrets: users.len(),
        })
    }
}
