//! The mail settings (docs/behaviour.md §11.1): `--smtp-url` (its password from the URL or
//! `GATEHOUSE_SMTP_PASSWORD`, never printed: [`SmtpUrl`]'s `Debug` hides it), `--mail-from`
//! and the `--public-url` that mail links are built from, checked together at start.

use std::fmt;

use lettre::message::Mailbox;

/// The environment variable that holds the SMTP password when the URL has none, so that it
/// never shows in `ps`.
pub const PASSWORD_ENV: &str = "GATEHOUSE_SMTP_PASSWORD";

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: plain, for a relay on the same host or network.
    Plain,
    /// `smtp+starttls://`: plain, then STARTTLS (required, never skipped).
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// A parsed `--smtp-url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub security: Security,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    /// From the URL's userinfo; [`MailSettings`] falls back to [`PASSWORD_ENV`].
    pub password: Option<String>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl fmt::Display for SmtpUrl {
    /// Scheme, host and port only: what a log line or an error message may show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            Security::Plain => "smtp",
            Security::StartTls => "smtp+starttls",
            Security::Tls => "smtps",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl SmtpUrl {
    /// `smtp://host[:25]`, `smtp+starttls://host[:587]`, `smtps://host[:465]`, with optional
    /// percent-encoded `user[:password]@`. The error never repeats the URL (it may hold a
    /// password).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim())
            .map_err(|e| format!("not a URL ({e}); e.g. smtp+starttls://mail.example.com:587"))?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (Security::Plain, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => (Security::Tls, 465),
            other => {
                return Err(format!(
                    "scheme {other:?} is not smtp, smtp+starttls or smtps"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("may hold only user, password, host and port".into());
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "its user or password is not UTF-8 once decoded".to_owned())
        };
        let user = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(decode)
            .transpose()?;
        let password = url.password().map(decode).transpose()?;
        let port = url.port().unwrap_or(default_port);
        if port == 0 {
            return Err("port 0 is no SMTP port".into());
        }
        Ok(Self {
            security,
            host,
            port,
            user,
            password,
        })
    }
}

/// clap's parser of `--smtp-url`: its errors name the flag and the reason, never the value
/// (clap's own would repeat it, password included, on stderr and so in the journal).
#[derive(Clone, Copy, Debug)]
pub struct SmtpUrlParser;

impl clap::builder::TypedValueParser for SmtpUrlParser {
    type Value = SmtpUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SmtpUrl, clap::Error> {
        let refuse = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid --smtp-url: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8".into()))?;
        SmtpUrl::parse(text).map_err(refuse)
    }
}

/// `--mail-from`: `"Name <addr>"` or a bare address.
pub fn parse_from(raw: &str) -> Result<Mailbox, String> {
    raw.trim().parse::<Mailbox>().map_err(|e| {
        format!("{raw:?} is not an address like \"Gatehouse <login@example.com>\" ({e})")
    })
}

/// Everything the mailer needs, checked.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp: SmtpUrl,
    pub from: Mailbox,
    /// `--public-url` without a trailing slash: every link in a mail starts with it.
    pub public_url: String,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp)
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl MailSettings {
    /// The settings when `--smtp-url` is given (`None`: mail is off), or the one-line reason
    /// they cannot work. `env_password` is [`PASSWORD_ENV`]'s value; a password in the URL
    /// wins. Without `--mail-from` the sender is `Gatehouse <noreply@HOST>` with HOST from
    /// `--public-url`.
    pub fn from_parts(
        smtp: Option<&SmtpUrl>,
        from: Option<&Mailbox>,
        public_url: Option<&str>,
        env_password: Option<String>,
    ) -> Result<Option<Self>, String> {
        let Some(smtp) = smtp else {
            return Ok(None);
        };
        let Some(public_url) = public_url else {
            return Err(
                "--smtp-url needs --public-url: the links in mail are built from it, never from \
                 a request's Host"
                    .into(),
            );
        };
        let public =
            url::Url::parse(public_url).map_err(|e| format!("--public-url is not a URL: {e}"))?;
        let host = public.host_str().ok_or("--public-url has no host")?;
        let mut smtp = smtp.clone();
        if smtp.password.is_none() {
            smtp.password = env_password.filter(|p| !p.is_empty());
        }
        if smtp.password.is_some() && smtp.user.is_none() {
            return Err(format!(
                "--smtp-url has a password ({PASSWORD_ENV}) but no user: write smtp+starttls://USER@host:587"
            ));
        }
        let from = match from {
            Some(from) => from.clone(),
            None => default_from(host)?,
        };
        Ok(Some(Self {
            smtp,
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }))
    }
}

/// `Gatehouse <noreply@HOST>`; an IP address (a test or intranet set-up) becomes
/// `localhost`, as lettre takes no address literals.
fn default_from(host: &str) -> Result<Mailbox, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let domain = if bare.parse::<std::net::IpAddr>().is_ok() {
        "localhost"
    } else {
        bare
    };
    parse_from(&format!("Gatehouse <noreply@{domain}>"))
        .map_err(|e| format!("--mail-from is not set and no default could be made: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_default_ports() {
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (u.security, u.port, u.host.as_str()),
            (Security::Plain, 2525, "127.0.0.1")
        );
        assert_eq!(SmtpUrl::parse("smtp://relay").unwrap().port, 25);
        assert!(SmtpUrl::parse("smtp://relay:0").is_err());
        let u = SmtpUrl::parse("smtp+starttls://me%40x.org:p%3Ass@mail.x.org").unwrap();
        assert_eq!((u.security, u.port), (Security::StartTls, 587));
        assert_eq!(u.user.as_deref(), Some("me@x.org"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(SmtpUrl::parse("smtps://mail.x.org").unwrap().port, 465);
        assert!(SmtpUrl::parse("http://mail.x.org").is_err());
        assert!(SmtpUrl::parse("smtp://mail.x.org/path").is_err());
        assert!(SmtpUrl::parse("mail.x.org:25").is_err());
    }

    #[test]
    fn the_password_never_shows() {
        let u = SmtpUrl::parse("smtps://user:hunter2secret@mail.x.org").unwrap();
        assert!(!format!("{u:?}").contains("hunter2secret"));
        assert!(!format!("{u}").contains("hunter2secret"));
        let err = SmtpUrl::parse("ftp://user:hunter2secret@mail.x.org").unwrap_err();
        assert!(!err.contains("hunter2secret"), "{err}");
        let s = MailSettings::from_parts(Some(&u), None, Some("https://a.example"), None)
            .unwrap()
            .unwrap();
        assert!(!format!("{s:?}").contains("hunter2secret"));
    }

    #[test]
    fn needs_public_url_and_takes_the_password_from_env() {
        let u = SmtpUrl::parse("smtp+starttls://apikey@mail.x.org").unwrap();
        assert!(matches!(
            MailSettings::from_parts(None, None, None, None),
            Ok(None)
        ));
        let err = MailSettings::from_parts(Some(&u), None, None, None).unwrap_err();
        assert!(err.contains("--public-url"), "{err}");
        let s = MailSettings::from_parts(
            Some(&u),
            Some(&parse_from("Site <login@x.org>").unwrap()),
            Some("https://login.x.org/"),
            Some("from-env".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.smtp.password.as_deref(), Some("from-env"));
        assert_eq!(s.public_url, "https://login.x.org");
        assert_eq!(s.from.email.to_string(), "login@x.org");
        let nouser = SmtpUrl::parse("smtp://mail.x.org").unwrap();
        assert!(
            MailSettings::from_parts(Some(&nouser), None, Some("https://a.x"), Some("p".into()))
                .is_err()
        );
    }

    #[test]
    fn from_is_parsed_with_a_default() {
        assert_eq!(
            parse_from("Gatehouse <a@b.org>").unwrap().name.as_deref(),
            Some("Gatehouse")
        );
        assert!(parse_from("not an address").is_err());
        let u = SmtpUrl::parse("smtp://127.0.0.1:25").unwrap();
        for public in [
            "http://127.0.0.1:8080",
            "https://login.x.org",
            "http://[::1]:80",
        ] {
            let s = MailSettings::from_parts(Some(&u), None, Some(public), None)
                .unwrap()
                .unwrap();
            assert_eq!(s.from.name.as_deref(), Some("Gatehouse"), "{public}");
        }
    }
}
