//! SQL of the outbox on PostgreSQL (docs/behaviour.md §11.1, §12), as `sqlite/outbox.rs` with
//! several instances in mind: each message is claimed by exactly one of them.
//!
//! A flow queues its mail with [`enqueue`] inside its own transaction, so the mail and the
//! change that causes it commit together or not at all. The bounds (queue size, per-recipient
//! rate) are counted under one transaction-scoped advisory lock, so instances queueing at once
//! cannot overshoot them; [`enqueue`] takes it last, after the caller's row locks, and nothing
//! but outbox rows is written after it, so it cannot take part in a deadlock. Claims lock their
//! rows with `FOR UPDATE SKIP LOCKED`: two senders claiming together get disjoint messages, and
//! a claim is a lease (`claimed_until`) that lapses by itself if its instance dies.

use super::PgStore;
use crate::store::{Enqueued, NewMail, OutboxLimits, QueuedMail, Result};

/// The window of [`OutboxLimits::per_recipient_per_hour`] (as on SQLite).
pub const RATE_WINDOW_MS: i64 = crate::store::sqlite::outbox::RATE_WINDOW_MS;

/// Serialises the bound checks of every instance (`pg_advisory_xact_lock(hashtextextended(…))`).
const OUTBOX_LOCK: &str = "gatehouse:outbox";

/// Takes the transaction-scoped advisory lock named `key` (held until commit or rollback).
pub(super) async fn lock(tx: &deadpool_postgres::Transaction<'_>, key: &str) -> Result<()> {
    let stmt = tx
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .await?;
    tx.execute(&stmt, &[&key]).await?;
    Ok(())
}

/// Messages queued for `key` (a lower-cased address, or a per-account budget key) within the
/// rate window before `now_ms`.
pub(super) async fn recent(
    tx: &deadpool_postgres::Transaction<'_>,
    key: &str,
    now_ms: i64,
) -> Result<i64> {
    let stmt = tx
        .prepare_cached("SELECT count(*) FROM mail_rate WHERE recipient = $1 AND at > $2")
        .await?;
    Ok(tx
        .query_one(&stmt, &[&key, &(now_ms - RATE_WINDOW_MS)])
        .await?
        .get(0))
}

/// Queues `mail` on `tx` (the caller's transaction) within `limits`: past a bound the message is
/// dropped, counted in the metrics, and nothing is written. The caller commits (and then wakes
/// the sender). Call it after the transaction's other writes (see the module's note on locks).
pub(super) async fn enqueue(
    tx: &deadpool_postgres::Transaction<'_>,
    mail: &NewMail,
    now_ms: i64,
    limits: &OutboxLimits,
) -> Result<Enqueued> {
    lock(tx, OUTBOX_LOCK).await?;
    let stmt = tx.prepare_cached("SELECT count(*) FROM outbox").await?;
    let queued: i64 = tx.query_one(&stmt, &[]).await?.get(0);
    if queued >= limits.max_queued {
        crate::metrics::mail_dropped("outbox_full");
        return Ok(Enqueued::DroppedFull);
    }
    let recipient = mail.recipient.to_ascii_lowercase();
    if recent(tx, &recipient, now_ms).await? >= limits.per_recipient_per_hour {
        crate::metrics::mail_dropped("recipient_rate");
        return Ok(Enqueued::DroppedRate);
    }
    let stmt = tx
        .prepare_cached("INSERT INTO mail_rate (recipient, at) VALUES ($1, $2)")
        .await?;
    tx.execute(&stmt, &[&recipient, &now_ms]).await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (message_id, recipient, kind, body, created_at, expires_at,
                                 attempts, next_try_at, claimed_until)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $5, 0)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &mail.message_id,
            &mail.recipient,
            &mail.kind,
            &mail.sealed_body,
            &mail.created_ms,
            &mail.expires_ms,
        ],
    )
    .await?;
    Ok(Enqueued::Queued)
}

impl PgStore {
    /// [`enqueue`] in a transaction of its own (a message no other change goes with).
    pub async fn enqueue_mail(
        &self,
        mail: NewMail,
        now_ms: i64,
        limits: OutboxLimits,
    ) -> Result<Enqueued> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = enqueue(&tx, &mail, now_ms, &limits).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Claims up to `limit` due messages (not expired, not under a live claim) until
    /// `now_ms + lease_ms`, counting the attempt now. Rows another instance is claiming at this
    /// moment are skipped, not waited for, so each message goes to one claimer.
    pub async fn claim_mail(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMail>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE outbox SET claimed_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE next_try_at <= $1 AND claimed_until <= $1
                                AND expires_at > $1
                              ORDER BY next_try_at, id LIMIT $3
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id, message_id, recipient, kind, body, attempts",
            )
            .await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows: Vec<QueuedMail> = client
            .query(&stmt, &[&now_ms, &(now_ms + lease_ms), &limit])
            .await?
            .iter()
            .map(|r| QueuedMail {
                id: r.get(0),
                message_id: r.get(1),
                recipient: r.get(2),
                kind: r.get(3),
                sealed_body: r.get(4),
                attempts: r.get(5),
            })
            .collect();
        rows.sort_by_key(|m| m.id);
        Ok(rows)
    }

    /// Releases nothing: other instances may be sending the messages they claimed right now,
    /// and a claim whose instance died lapses with its lease.
    pub async fn release_mail_claims(&self) -> Result<usize> {
        Ok(0)
    }

    /// Deletes a message: delivered, or refused for good. Returns whether it was there.
    pub async fn delete_mail(&self, id: i64) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM outbox WHERE id = $1")
            .await?;
        Ok(client.execute(&stmt, &[&id]).await? == 1)
    }

    /// Puts a message back for another attempt at `next_try_ms`.
    pub async fn retry_mail_at(&self, id: i64, next_try_ms: i64) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("UPDATE outbox SET next_try_at = $2, claimed_until = 0 WHERE id = $1")
            .await?;
        Ok(client.execute(&stmt, &[&id, &next_try_ms]).await? == 1)
    }

    /// Deletes messages past their expiry (their links are dead) unless a live claim is sending
    /// them, and rate records older than the window. Returns how many messages expired unsent.
    pub async fn purge_outbox(&self, now_ms: i64) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let expired = tx
            .execute(
                "DELETE FROM outbox WHERE expires_at <= $1 AND claimed_until <= $1",
                &[&now_ms],
            )
            .await?;
        tx.execute(
            "DELETE FROM mail_rate WHERE at <= $1",
            &[&(now_ms - RATE_WINDOW_MS)],
        )
        .await?;
        tx.commit().await?;
        Ok(expired as usize)
    }

    /// Messages waiting (claimed ones included).
    pub async fn outbox_depth(&self) -> Result<i64> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT count(*) FROM outbox", &[])
            .await?
            .get(0))
    }

    /// When the next message falls due (unclaimed or its claim lapsed, not expired).
    pub async fn next_mail_due(&self, now_ms: i64) -> Result<Option<i64>> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT min(greatest(next_try_at, claimed_until)) FROM outbox WHERE expires_at > $1",
                &[&now_ms],
            )
            .await?
            .get(0))
    }
}
