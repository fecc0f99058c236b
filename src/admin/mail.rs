//! `gatehouse mail test ADDRESS`: sends a test message through `--smtp-url` at once and
//! prints the SMTP server's answer. At once, not through the outbox: the point is the server's
//! answer to this very message, now, whether or not `gatehouse serve` runs (the outbox is
//! delivered only by a running server's sender). `--queue` (hidden) queues it in the outbox
//! instead, for the outbox's own tests.

use super::{AdminError, Result, audit_admin, existing_store, refused, wait};
use crate::cli::{Config, MailCommand};
use crate::mail::transport::{Outcome, Smtp};
use crate::mail::{MailKind, MailSettings, Mailer};
use crate::store::Enqueued;

/// How long a queued test message stays worth sending.
const QUEUED_TEST_TTL_MS: i64 = 3_600_000;

pub fn run(config: &Config, command: MailCommand) -> Result<()> {
    match command {
        MailCommand::Test { address, queue } => {
            let Some(settings) = config.mail_settings().map_err(AdminError::Refused)? else {
                return refused(
                    "mail is off: set --smtp-url (GATEHOUSE_SMTP_URL) and --public-url first",
                );
            };
            if queue {
                queue_test(config, settings, &address)
            } else {
                send_test(config, &settings, &address)
            }
        }
    }
}

fn send_test(config: &Config, settings: &MailSettings, address: &str) -> Result<()> {
    let smtp = Smtp::new(&settings.smtp).map_err(AdminError::Refused)?;
    let now = crate::clock::now_ms();
    let rendered = crate::mail::message::render(
        &settings.from,
        &settings.public_url,
        address,
        &MailKind::Test,
        now,
    )
    .map_err(|e| AdminError::Refused(e.to_string()))?;
    let outcome = wait(smtp.send(&settings.from.email, &rendered.recipient, &rendered.bytes));
    let (result, detail) = match &outcome {
        Outcome::Accepted(answer) => {
            println!(
                "{} accepted the test message to {} ({}): {answer}",
                smtp.server(),
                rendered.recipient,
                rendered.message_id
            );
            (Ok(()), format!("to {}: {answer}", rendered.recipient))
        }
        Outcome::Refused(answer) | Outcome::Deferred(answer) => {
            let verdict = if matches!(outcome, Outcome::Refused(_)) {
                "refused the test message for good"
            } else {
                "did not take the test message (a later try may work)"
            };
            let msg = format!(
                "{} {verdict} to {}: {answer}",
                smtp.server(),
                rendered.recipient
            );
            (refused(msg.clone()), msg)
        }
    };
    // The trail lives in the database: record there when there is one, create none.
    if (config.database_is_url() || config.database.exists())
        && let Ok(store) = crate::store::Store::open_with(&config.database, &config.pg_options())
    {
        let outcome = if result.is_ok() { "ok" } else { "refused" };
        audit_admin(&store, "admin.mail.test", outcome, None, None, Some(detail));
    }
    result
}

fn queue_test(config: &Config, settings: MailSettings, address: &str) -> Result<()> {
    let store = existing_store(config)?;
    let env_key = std::env::var(crate::security::secret::ENV_VAR).ok();
    let key =
        crate::security::secret::SecretKey::load(env_key.as_deref(), &config.secret_key_path())
            .map_err(|e| AdminError::Refused(e.to_string()))?;
    let mailer =
        Mailer::new(settings, &key, config.mail_retry_base).map_err(AdminError::Refused)?;
    let now = crate::clock::now_ms();
    let mail = mailer
        .compose(address, &MailKind::Test, now, now + QUEUED_TEST_TTL_MS)
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    let message_id = mail.message_id.clone();
    let outcome = wait(store.enqueue_mail(mail, now, *mailer.limits()))?;
    let detail = format!("to {address}: {outcome:?}");
    match outcome {
        Enqueued::Queued => {
            audit_admin(&store, "admin.mail.test", "ok", None, None, Some(detail));
            println!("queued {message_id} for {address}; the running server sends it");
            Ok(())
        }
        Enqueued::DroppedFull | Enqueued::DroppedRate => {
            audit_admin(
                &store,
                "admin.mail.test",
                "refused",
                None,
                None,
                Some(detail),
            );
            refused(format!(
                "not queued: {}",
                if outcome == Enqueued::DroppedFull {
                    "the outbox is full"
                } else {
                    "this address had its share of mail this hour"
                }
            ))
        }
    }
}
