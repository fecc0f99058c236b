//! SQL of the outbox (docs/behaviour.md §11.1): messages wait in `outbox` until the sender
//! delivers them, each sealed, each with its `Message-ID`; `mail_rate` remembers an hour of
//! queued messages per recipient for the per-address bound.
//!
//! A flow queues its mail with [`enqueue`] inside its own write transaction, so the mail and
//! the change that causes it commit together or not at all. The sender claims due rows for a
//! lease (`claimed_until`): a claim that outlives its sender (a crash) lapses, and one server
//! per database means the claims a new server finds at start are all dead ([`SqliteStore::
//! release_mail_claims`]).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::store::{Enqueued, NewMail, OutboxLimits, QueuedMail, Result};

/// The window of [`OutboxLimits::per_recipient_per_hour`].
pub const RATE_WINDOW_MS: i64 = 3_600_000;

/// Queues `mail` on `tx` (a connection inside the caller's write transaction) within
/// `limits`: past a bound the message is dropped, counted in the metrics, and nothing is
/// written. The caller commits (and then wakes the sender).
pub fn enqueue(
    tx: &Connection,
    mail: &NewMail,
    now_ms: i64,
    limits: &OutboxLimits,
) -> Result<Enqueued> {
    let queued: i64 = tx
        .prepare_cached("SELECT count(*) FROM outbox")?
        .query_row([], |r| r.get(0))?;
    if queued >= limits.max_queued {
        crate::metrics::mail_dropped("outbox_full");
        return Ok(Enqueued::DroppedFull);
    }
    let recipient = mail.recipient.to_ascii_lowercase();
    let recent: i64 = tx
        .prepare_cached("SELECT count(*) FROM mail_rate WHERE recipient = ?1 AND at > ?2")?
        .query_row(params![recipient, now_ms - RATE_WINDOW_MS], |r| r.get(0))?;
    if recent >= limits.per_recipient_per_hour {
        crate::metrics::mail_dropped("recipient_rate");
        return Ok(Enqueued::DroppedRate);
    }
    tx.prepare_cached("INSERT INTO mail_rate (recipient, at) VALUES (?1, ?2)")?
        .execute(params![recipient, now_ms])?;
    tx.prepare_cached(
        "INSERT INTO outbox (message_id, recipient, kind, body, created_at, expires_at,
                             attempts, next_try_at, claimed_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?5, 0)",
    )?
    .execute(params![
        mail.message_id,
        mail.recipient,
        mail.kind,
        mail.sealed_body,
        mail.created_ms,
        mail.expires_ms
    ])?;
    Ok(Enqueued::Queued)
}

impl SqliteStore {
    /// [`enqueue`] in a transaction of its own (a message no other change goes with).
    pub fn enqueue_mail(
        &self,
        mail: &NewMail,
        now_ms: i64,
        limits: &OutboxLimits,
    ) -> Result<Enqueued> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = enqueue(&tx, mail, now_ms, limits)?;
            tx.commit()?;
            Ok(outcome)
        })
    }

    /// Claims up to `limit` due messages (not expired, not claimed by a live claim) until
    /// `now_ms + lease_ms`, counting the attempt now: a sender that dies mid-send has used it.
    pub fn claim_mail(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<QueuedMail>> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows = tx
                .prepare_cached(
                    "UPDATE outbox SET claimed_until = ?2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE next_try_at <= ?1 AND claimed_until <= ?1
                                    AND expires_at > ?1
                                  ORDER BY next_try_at, id LIMIT ?3)
                     RETURNING id, message_id, recipient, kind, body, attempts",
                )?
                .query_map(params![now_ms, now_ms + lease_ms, limit as i64], |r| {
                    Ok(QueuedMail {
                        id: r.get(0)?,
                        message_id: r.get(1)?,
                        recipient: r.get(2)?,
                        kind: r.get(3)?,
                        sealed_body: r.get(4)?,
                        attempts: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            let mut rows = rows;
            rows.sort_by_key(|m| m.id);
            Ok(rows)
        })
    }

    /// Forgets every claim: at start, when no other sender can be running on this database.
    pub fn release_mail_claims(&self) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE outbox SET claimed_until = 0 WHERE claimed_until != 0",
                [],
            )?)
        })
    }

    /// Deletes a message: delivered, or refused for good. Returns whether it was there.
    pub fn delete_mail(&self, id: i64) -> Result<bool> {
        self.write(|c| Ok(c.execute("DELETE FROM outbox WHERE id = ?1", [id])? == 1))
    }

    /// Puts a message back for another attempt at `next_try_ms`.
    pub fn retry_mail_at(&self, id: i64, next_try_ms: i64) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE outbox SET next_try_at = ?2, claimed_until = 0 WHERE id = ?1",
                params![id, next_try_ms],
            )? == 1)
        })
    }

    /// Deletes messages past their expiry (their links are dead) and rate records older than
    /// the rate window. Returns how many messages expired unsent.
    pub fn purge_outbox(&self, now_ms: i64) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            let expired = tx.execute(
                "DELETE FROM outbox WHERE expires_at <= ?1 AND claimed_until <= ?1",
                [now_ms],
            )?;
            tx.execute(
                "DELETE FROM mail_rate WHERE at <= ?1",
                [now_ms - RATE_WINDOW_MS],
            )?;
            tx.commit()?;
            Ok(expired)
        })
    }

    /// Messages waiting (claimed ones included).
    pub fn outbox_depth(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?))
    }

    /// When the next message falls due (unclaimed or its claim lapsed, not expired).
    pub fn next_mail_due(&self, now_ms: i64) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT min(max(next_try_at, claimed_until)) FROM outbox WHERE expires_at > ?1",
                [now_ms],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("users.database")).unwrap();
        (dir, s)
    }

    fn mail(n: u32, to: &str, now: i64) -> NewMail {
        NewMail {
            message_id: format!("<{n}@x.org>"),
            recipient: to.into(),
            kind: "test",
            sealed_body: vec![n as u8; 40],
            created_ms: now,
            expires_ms: now + 3_600_000,
        }
    }

    const WIDE: OutboxLimits = OutboxLimits {
        max_queued: 100,
        per_recipient_per_hour: 100,
    };

    #[test]
    fn enqueue_commits_with_the_callers_transaction_or_not_at_all() {
        let (_d, s) = store();
        s.write(|c| {
            let tx = c.transaction()?;
            assert_eq!(
                enqueue(&tx, &mail(1, "a@x.org", 0), 0, &WIDE)?,
                Enqueued::Queued
            );
            // Dropped without commit: rolled back, like the change it went with.
            Ok(())
        })
        .unwrap();
        assert_eq!(s.outbox_depth().unwrap(), 0);
        assert_eq!(
            s.enqueue_mail(&mail(1, "a@x.org", 0), 0, &WIDE).unwrap(),
            Enqueued::Queued
        );
        assert_eq!(s.outbox_depth().unwrap(), 1);
    }

    #[test]
    fn the_outbox_and_each_recipient_are_bounded() {
        let (_d, s) = store();
        let limits = OutboxLimits {
            max_queued: 3,
            per_recipient_per_hour: 2,
        };
        let q = |n, to: &str, now| s.enqueue_mail(&mail(n, to, now), now, &limits).unwrap();
        assert_eq!(q(1, "a@x.org", 0), Enqueued::Queued);
        assert_eq!(q(2, "A@X.org", 10), Enqueued::Queued);
        assert_eq!(q(3, "a@x.org", 20), Enqueued::DroppedRate, "case ignored");
        assert_eq!(q(4, "b@x.org", 30), Enqueued::Queued);
        assert_eq!(q(5, "c@x.org", 40), Enqueued::DroppedFull);
        assert_eq!(s.outbox_depth().unwrap(), 3);
        // Delivered and an hour later: room again.
        for m in s.claim_mail(50, 1_000, 10).unwrap() {
            s.delete_mail(m.id).unwrap();
        }
        assert_eq!(
            q(6, "a@x.org", 60),
            Enqueued::DroppedRate,
            "the hour counts sent mail"
        );
        s.purge_outbox(RATE_WINDOW_MS + 20).unwrap();
        assert_eq!(q(7, "a@x.org", RATE_WINDOW_MS + 20), Enqueued::Queued);
    }

    #[test]
    fn one_claim_at_a_time_and_a_lapsed_claim_is_claimed_again() {
        let (_d, s) = store();
        s.enqueue_mail(&mail(1, "a@x.org", 0), 0, &WIDE).unwrap();
        s.enqueue_mail(&mail(2, "b@x.org", 5), 5, &WIDE).unwrap();
        let first = s.claim_mail(10, 1_000, 10).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].message_id, "<1@x.org>");
        assert_eq!(first[0].attempts, 1);
        assert_eq!(first[0].sealed_body, vec![1u8; 40]);
        assert!(s.claim_mail(500, 1_000, 10).unwrap().is_empty(), "claimed");
        assert_eq!(s.next_mail_due(500).unwrap(), Some(1_010));
        let again = s.claim_mail(1_010, 1_000, 1).unwrap();
        assert_eq!(again.len(), 1, "the limit holds");
        assert_eq!(again[0].attempts, 2);
        // A new server: every claim is dead.
        assert_eq!(s.release_mail_claims().unwrap(), 2);
        assert_eq!(s.claim_mail(1_020, 1_000, 10).unwrap().len(), 2);
    }

    #[test]
    fn retry_delete_and_expiry() {
        let (_d, s) = store();
        s.enqueue_mail(&mail(1, "a@x.org", 0), 0, &WIDE).unwrap();
        let m = s.claim_mail(0, 60_000, 10).unwrap().remove(0);
        assert!(s.retry_mail_at(m.id, 5_000).unwrap());
        assert!(
            s.claim_mail(4_999, 60_000, 10).unwrap().is_empty(),
            "not due yet"
        );
        assert_eq!(s.next_mail_due(0).unwrap(), Some(5_000));
        let m = s.claim_mail(5_000, 60_000, 10).unwrap().remove(0);
        assert_eq!(m.attempts, 2, "the Message-ID and row stay, attempts count");
        assert_eq!(m.message_id, "<1@x.org>");
        assert!(s.delete_mail(m.id).unwrap());
        assert_eq!(s.outbox_depth().unwrap(), 0);
        assert_eq!(s.next_mail_due(0).unwrap(), None);

        s.enqueue_mail(&mail(2, "a@x.org", 0), 0, &WIDE).unwrap();
        assert!(
            s.claim_mail(3_600_000, 1, 10).unwrap().is_empty(),
            "expired: never sent"
        );
        assert_eq!(s.purge_outbox(3_600_000).unwrap(), 1);
        assert_eq!(s.outbox_depth().unwrap(), 0);
    }
}
