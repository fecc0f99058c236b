//! What a mail says: [`MailKind`], the messages the flows ask for, rendered by the Askama
//! templates under `templates/mail/` (plain text plus an HTML alternative, no remote content,
//! everything HTML-escaped) into a complete RFC 5322 message with its own `Message-ID`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use askama::Template;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

/// A message the site sends. `browser` is the family-and-system description
/// (`crate::user_agent::describe`), never the raw `User-Agent`; `ip` is the
/// requesting client's address as the site saw it.
#[derive(Clone, Debug)]
pub enum MailKind {
    /// `gatehouse mail test`.
    Test,
    PasswordReset {
        username: String,
        link: String,
        expires_in: Duration,
        browser: String,
        ip: String,
    },
    PasswordChanged {
        username: String,
        browser: String,
        ip: String,
    },
    VerifyEmail {
        username: String,
        link: String,
        expires_in: Duration,
    },
    /// To the old address when the account asks to move to a new one.
    EmailChangeNotice { username: String },
}

impl MailKind {
    /// The kind's name as the outbox, the logs and the metrics know it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordChanged { .. } => "password_changed",
            Self::VerifyEmail { .. } => "verify_email",
            Self::EmailChangeNotice { .. } => "email_change_notice",
        }
    }

    fn subject(&self, site: &str) -> String {
        match self {
            Self::Test => format!("Test message from {site}"),
            Self::PasswordReset { .. } => format!("Reset your password on {site}"),
            Self::PasswordChanged { .. } => format!("Your password on {site} was changed"),
            Self::VerifyEmail { .. } => format!("Confirm your email address on {site}"),
            Self::EmailChangeNotice { .. } => {
                format!("Your account on {site} is moving to another address")
            }
        }
    }
}

/// What every template reads (fields a kind does not have stay empty).
#[derive(Default)]
struct View {
    subject: String,
    /// The public URL's host, which names the site.
    site: String,
    site_url: String,
    username: String,
    link: String,
    expires_in: String,
    browser: String,
    ip: String,
}

macro_rules! body {
    ($name:ident, $path:literal) => {
        #[derive(Template)]
        #[template(path = $path)]
        struct $name<'a> {
            v: &'a View,
        }
    };
}

body!(TestText, "mail/test.txt");
body!(TestHtml, "mail/test.html");
body!(ResetText, "mail/password_reset.txt");
body!(ResetHtml, "mail/password_reset.html");
body!(ChangedText, "mail/password_changed.txt");
body!(ChangedHtml, "mail/password_changed.html");
body!(VerifyText, "mail/verify_email.txt");
body!(VerifyHtml, "mail/verify_email.html");
body!(NoticeText, "mail/email_change_notice.txt");
body!(NoticeHtml, "mail/email_change_notice.html");

/// "1 hour", "24 hours", "30 minutes", "45 seconds".
pub fn describe_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else if secs >= 3600 {
        // Not a whole number of hours or minutes: round down, never promise more time.
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The text and HTML bodies of `kind`.
fn bodies(kind: &MailKind, mut v: View) -> askama::Result<(String, String)> {
    match kind {
        MailKind::Test => {}
        MailKind::PasswordReset {
            username,
            link,
            expires_in,
            browser,
            ip,
        } => {
            v.username = username.clone();
            v.link = link.clone();
            v.expires_in = describe_duration(*expires_in);
            v.browser = browser.clone();
            v.ip = ip.clone();
        }
        MailKind::PasswordChanged {
            username,
            browser,
            ip,
        } => {
            v.username = username.clone();
            v.browser = browser.clone();
            v.ip = ip.clone();
        }
        MailKind::VerifyEmail {
            username,
            link,
            expires_in,
        } => {
            v.username = username.clone();
            v.link = link.clone();
            v.expires_in = describe_duration(*expires_in);
        }
        MailKind::EmailChangeNotice { username } => v.username = username.clone(),
    }
    let v = &v;
    Ok(match kind {
        MailKind::Test => (TestText { v }.render()?, TestHtml { v }.render()?),
        MailKind::PasswordReset { .. } => (ResetText { v }.render()?, ResetHtml { v }.render()?),
        MailKind::PasswordChanged { .. } => {
            (ChangedText { v }.render()?, ChangedHtml { v }.render()?)
        }
        MailKind::VerifyEmail { .. } => (VerifyText { v }.render()?, VerifyHtml { v }.render()?),
        MailKind::EmailChangeNotice { .. } => {
            (NoticeText { v }.render()?, NoticeHtml { v }.render()?)
        }
    })
}

/// Why a message could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0:?} is not an email address")]
    Recipient(String),
    #[error("rendering the mail failed: {0}")]
    Render(String),
}

/// A complete message, ready for SMTP.
pub struct Rendered {
    /// With its angle brackets, as in the header.
    pub message_id: String,
    pub recipient: String,
    pub kind: &'static str,
    /// The whole message (headers and body) as sent.
    pub bytes: Vec<u8>,
    pub message: Message,
}

/// Renders `kind` for `to`, from `from`, with links under `site_url`, dated `now_ms`.
pub fn render(
    from: &Mailbox,
    site_url: &str,
    to: &str,
    kind: &MailKind,
    now_ms: i64,
) -> Result<Rendered, ComposeError> {
    let to_address: lettre::Address = to
        .trim()
        .parse()
        .map_err(|_| ComposeError::Recipient(to.to_owned()))?;
    let site = url::Url::parse(site_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| site_url.to_owned());
    let subject = kind.subject(&site);
    let (text, html) = bodies(
        kind,
        View {
            subject: subject.clone(),
            site,
            site_url: site_url.to_owned(),
            ..View::default()
        },
    )
    .map_err(|e| ComposeError::Render(e.to_string()))?;
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain());
    let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    let message = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to_address.clone()))
        .subject(subject)
        .message_id(Some(message_id.clone()))
        .date(date.max(SystemTime::UNIX_EPOCH))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| ComposeError::Render(e.to_string()))?;
    Ok(Rendered {
        message_id,
        recipient: to_address.to_string(),
        kind: kind.name(),
        bytes: message.formatted(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "Gatehouse <login@example.org>".parse().unwrap()
    }

    fn reset() -> MailKind {
        MailKind::PasswordReset {
            username: "alice".into(),
            link: "https://login.example.org/password-reset/TOKEN123?a=1&b=<2>".into(),
            expires_in: Duration::from_secs(3600),
            browser: "Firefox 120 on Windows".into(),
            ip: "192.0.2.7".into(),
        }
    }

    fn text(r: &Rendered) -> String {
        String::from_utf8(r.bytes.clone()).unwrap()
    }

    #[test]
    fn a_reset_mail_has_both_parts_the_link_browser_and_expiry() {
        let r = render(
            &from(),
            "https://login.example.org",
            "alice@example.org",
            &reset(),
            0,
        )
        .unwrap();
        let raw = text(&r);
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(raw.contains(&format!("Message-ID: {}", r.message_id)));
        assert!(r.message_id.ends_with("@example.org>"));
        assert!(raw.contains("From: Gatehouse <login@example.org>"));
        assert!(raw.contains("Subject: Reset your password on login.example.org"));
        assert!(
            !raw.contains("<img") && !raw.contains("src="),
            "no remote content"
        );
        // The parts as written (the message itself may be quoted-printable).
        let (text, html) = bodies(
            &reset(),
            View {
                site: "login.example.org".into(),
                ..View::default()
            },
        )
        .unwrap();
        assert!(text.contains("TOKEN123?a=1&b=<2>"), "plain text as typed");
        assert!(
            html.contains("TOKEN123?a=1&#38;b=&#60;2&#62;"),
            "HTML escaped: {html}"
        );
        for part in [&text, &html] {
            assert!(part.contains("Firefox 120 on Windows") && part.contains("192.0.2.7"));
            assert!(part.contains("within 1 hour"));
        }
        assert_eq!(r.kind, "password_reset");
    }

    #[test]
    fn every_kind_renders_and_escapes_names() {
        let kinds = [
            MailKind::Test,
            reset(),
            MailKind::PasswordChanged {
                username: "bob".into(),
                browser: "Chrome 1 on Linux".into(),
                ip: "2001:db8::1".into(),
            },
            MailKind::VerifyEmail {
                username: "bob".into(),
                link: "https://x.org/verify-email/T".into(),
                expires_in: Duration::from_secs(86_400),
            },
            MailKind::EmailChangeNotice {
                username: "<b>bob</b>".into(),
            },
        ];
        for kind in &kinds {
            let r = render(
                &from(),
                "https://x.org",
                "bob@x.org",
                kind,
                1_700_000_000_000,
            )
            .unwrap();
            let raw = text(&r);
            assert!(raw.contains("text/html"), "{}", kind.name());
            let (_, html) = bodies(kind, View::default()).unwrap();
            assert!(!html.contains("<b>bob</b>"), "HTML-escaped");
        }
        let one = |k: &MailKind| {
            render(&from(), "https://x.org", "bob@x.org", k, 0)
                .unwrap()
                .message_id
        };
        assert_ne!(
            one(&MailKind::Test),
            one(&MailKind::Test),
            "one Message-ID per message"
        );
        assert!(
            render(
                &from(),
                "https://x.org",
                "not an address",
                &MailKind::Test,
                0
            )
            .is_err()
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe_duration(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe_duration(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(describe_duration(Duration::from_secs(2)), "2 seconds");
        assert_eq!(describe_duration(Duration::from_secs(5400)), "90 minutes");
    }
}
