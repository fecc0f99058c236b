//! The background sender: delivers the outbox over SMTP. It wakes when a flow queued mail
//! ([`Mailer::wake`]), when a retry falls due, and every [`Mailer::idle_poll`] (mail queued by
//! another process). Each message is claimed for a lease before it is sent, deleted once the
//! server accepted it, put back with exponential backoff after a 4xx or no answer, and deleted
//! and audited after a 5xx. A crash between the server's "250" and the delete sends that one
//! message again, under the same `Message-ID`.
//!
//! Log lines name a message by its outbox id, kind and `Message-ID`, never by its body.

use std::sync::Arc;
use std::time::Duration;

use super::Mailer;
use super::transport::Outcome;
use crate::audit::{AuditLog, EventExt};
use crate::clock::Clock;
use crate::store::{QueuedMail, Store};

/// Messages claimed per round.
const BATCH: usize = 16;
/// A claim outlives any one attempt (each SMTP step times out after 30 s).
const LEASE: Duration = Duration::from_secs(300);

/// Runs until the server stops.
pub async fn run(store: Store, mailer: Arc<Mailer>, audit: Arc<AuditLog>, clock: Arc<dyn Clock>) {
    // On SQLite (one server per database) a claim found now belonged to a process that is gone,
    // so the store forgets them all. On PostgreSQL other instances may be sending what they
    // claimed: the store releases nothing, and a dead instance's claims lapse with their lease.
    match store.release_mail_claims().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "mail claimed before a restart is due again"),
        Err(e) => tracing::warn!("outbox: releasing old claims failed: {e}"),
    }
    tracing::info!(server = mailer.smtp().server(), "mail sender started");
    loop {
        let now = clock.now().as_ms();
        match store.purge_outbox(now).await {
            Ok(0) => {}
            Ok(n) => {
                crate::metrics::mail_failed("expired", n as u64);
                tracing::warn!(messages = n, "mail expired in the outbox before delivery");
            }
            Err(e) => tracing::warn!("outbox purge failed: {e}"),
        }
        let claimed = match store.claim_mail(now, LEASE.as_millis() as i64, BATCH).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("outbox: claiming mail failed: {e}");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH;
        for mail in claimed {
            deliver(&store, &mailer, &audit, clock.as_ref(), mail).await;
        }
        if full {
            continue;
        }
        let now = clock.now().as_ms();
        let idle = mailer.idle_poll();
        let wait = match store.next_mail_due(now).await {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now).max(0) as u64).min(idle),
            Ok(None) => idle,
            Err(_) => idle,
        };
        tokio::select! {
            _ = mailer.woken() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One attempt at one claimed message.
async fn deliver(
    store: &Store,
    mailer: &Mailer,
    audit: &AuditLog,
    clock: &dyn Clock,
    mail: QueuedMail,
) {
    let id = mail.id;
    let kind = mail.kind.as_str();
    let message_id = mail.message_id.as_str();
    let bytes = match mailer.sealer().open(message_id, &mail.sealed_body) {
        Ok(b) => b,
        Err(e) => {
            // Sealed under another site key: it can never be read again.
            tracing::warn!(id, kind, message_id, "outbox: {e}; message deleted");
            crate::metrics::mail_failed("unreadable", 1);
            forget(store, id).await;
            return;
        }
    };
    let from = &mailer.settings().from.email;
    match mailer.smtp().send(from, &mail.recipient, &bytes).await {
        Outcome::Accepted(answer) => {
            crate::metrics::mail_sent();
            tracing::info!(
                id,
                kind,
                message_id,
                attempt = mail.attempts,
                answer,
                "mail delivered"
            );
            forget(store, id).await;
        }
        Outcome::Refused(answer) => {
            crate::metrics::mail_failed("refused", 1);
            tracing::warn!(id, kind, message_id, answer, "mail refused for good");
            audit.record(
                crate::audit::event_at("mail", "refused", clock.now().as_ms()).detail(format!(
                    "{kind} mail {message_id} to {} after {} attempt(s): {answer}",
                    mail.recipient, mail.attempts
                )),
            );
            forget(store, id).await;
        }
        Outcome::Deferred(reason) => {
            let wait = mailer.backoff(mail.attempts);
            tracing::info!(
                id,
                kind,
                message_id,
                attempt = mail.attempts,
                retry_in_ms = wait.as_millis() as u64,
                reason,
                "mail delivery deferred"
            );
            let at = clock.now().as_ms() + wait.as_millis() as i64;
            if let Err(e) = store.retry_mail_at(id, at).await {
                // The claim lapses and the message is tried again anyway.
                tracing::warn!(id, "outbox: rescheduling failed: {e}");
            }
        }
    }
}

async fn forget(store: &Store, id: i64) {
    if let Err(e) = store.delete_mail(id).await {
        // The claim lapses and the message goes out again, under the same Message-ID.
        tracing::warn!(id, "outbox: deleting a finished message failed: {e}");
    }
}
