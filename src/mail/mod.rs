//! Outgoing mail (docs/behaviour.md §11.1). A flow that causes a mail asks the [`Mailer`] to
//! [`compose`](Mailer::compose) a [`MailKind`] (rendered, then sealed: [`seal`]), queues the
//! result in the outbox inside its own write transaction (`store::sqlite::outbox::enqueue`),
//! commits, and calls [`Mailer::wake`]. The background [`sender`] delivers it over SMTP
//! ([`transport`]), retrying with backoff, and deletes it once delivered, refused for good or
//! expired. Nothing of a body, link or token reaches a log line.

pub mod message;
pub mod seal;
pub mod sender;
pub mod settings;
pub mod transport;

use std::time::Duration;

use tokio::sync::Notify;

pub use message::{ComposeError, MailKind, Rendered};
pub use settings::{MailSettings, SmtpUrl};

use crate::security::secret::SecretKey;
use crate::store::{NewMail, OutboxLimits};

/// The longest wait between two attempts at one message.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What the flows and the sender share: the settings, the outbox key, the SMTP client and the
/// sender's wake-up call.
pub struct Mailer {
    settings: MailSettings,
    sealer: seal::Sealer,
    smtp: transport::Smtp,
    wake: Notify,
    limits: OutboxLimits,
    retry_base: Duration,
}

impl Mailer {
    /// `retry_base`: the wait after a message's first failed attempt (`--mail-retry-base`),
    /// doubled after each further one up to ten minutes.
    pub fn new(
        settings: MailSettings,
        key: &SecretKey,
        retry_base: Duration,
    ) -> Result<Self, String> {
        let smtp = transport::Smtp::new(&settings.smtp)?;
        Ok(Self {
            sealer: seal::Sealer::new(key),
            smtp,
            settings,
            wake: Notify::new(),
            limits: OutboxLimits::default(),
            retry_base,
        })
    }

    /// The whole URL of a path on the site (`/password-reset/TOKEN`), from `--public-url`:
    /// never from a request's `Host`.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.settings.public_url)
    }

    /// The outbox bounds to pass to `enqueue`.
    pub fn limits(&self) -> &OutboxLimits {
        &self.limits
    }

    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    pub(crate) fn smtp(&self) -> &transport::Smtp {
        &self.smtp
    }

    pub(crate) fn sealer(&self) -> &seal::Sealer {
        &self.sealer
    }

    /// The complete message for `to`, unsealed (`gatehouse mail test` sends it at once).
    pub fn render(&self, to: &str, kind: &MailKind, now_ms: i64) -> Result<Rendered, ComposeError> {
        message::render(
            &self.settings.from,
            &self.settings.public_url,
            to,
            kind,
            now_ms,
        )
    }

    /// The outbox row for `kind` to `to`: rendered, sealed, with its `Message-ID` fixed for
    /// every retry, deleted unsent at `expires_ms` (the link's expiry).
    pub fn compose(
        &self,
        to: &str,
        kind: &MailKind,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<NewMail, ComposeError> {
        let r = self.render(to, kind, now_ms)?;
        let sealed_body = self.sealer.seal(&r.message_id, &r.bytes);
        Ok(NewMail {
            message_id: r.message_id,
            recipient: r.recipient,
            kind: r.kind,
            sealed_body,
            created_ms: now_ms,
            expires_ms,
        })
    }

    /// Tells the sender that mail was queued (call it after the transaction committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones.
    pub fn backoff(&self, attempts: i64) -> Duration {
        backoff(self.retry_base, attempts)
    }

    /// How long the sender sleeps with nothing due: queued mail from another process (the
    /// admin command) waits at most this long.
    pub(crate) fn idle_poll(&self) -> Duration {
        self.retry_base
            .clamp(Duration::from_millis(50), Duration::from_secs(30))
    }
}

fn backoff(base: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 3), Duration::from_secs(20));
        assert_eq!(backoff(base, 8), Duration::from_secs(600));
        assert_eq!(backoff(base, 1_000), Duration::from_secs(600));
        assert_eq!(backoff(base, 0), Duration::from_secs(5));
    }

    #[test]
    fn composed_mail_is_sealed_and_opens_with_its_message_id() {
        let settings = MailSettings::from_parts(
            Some(&SmtpUrl::parse("smtp://127.0.0.1:25").unwrap()),
            None,
            Some("https://login.example.org"),
            None,
        )
        .unwrap()
        .unwrap();
        let key = SecretKey::from_bytes(&[3; 32]).unwrap();
        let mailer = Mailer::new(settings, &key, Duration::from_secs(5)).unwrap();
        let link = mailer.link("/password-reset/SECRET-TOKEN-abc");
        assert_eq!(
            link,
            "https://login.example.org/password-reset/SECRET-TOKEN-abc"
        );
        let kind = MailKind::PasswordReset {
            username: "alice".into(),
            link,
            expires_in: Duration::from_secs(3600),
            browser: "Firefox 1 on Linux".into(),
            ip: "192.0.2.1".into(),
        };
        let mail = mailer
            .compose("Alice@Example.org", &kind, 1_000, 3_601_000)
            .unwrap();
        assert_eq!(mail.kind, "password_reset");
        assert_eq!(mail.recipient, "Alice@Example.org");
        assert_eq!((mail.created_ms, mail.expires_ms), (1_000, 3_601_000));
        let raw = String::from_utf8_lossy(&mail.sealed_body);
        assert!(
            !raw.contains("SECRET-TOKEN"),
            "the outbox never holds a readable link"
        );
        let opened = mailer
            .sealer()
            .open(&mail.message_id, &mail.sealed_body)
            .unwrap();
        let text = String::from_utf8_lossy(&opened);
        assert!(text.contains("SECRET-TOKEN-abc"));
        assert!(text.contains(&format!("Message-ID: {}", mail.message_id)));
    }
}
