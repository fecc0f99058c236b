//! The SMTP connection: lettre over tokio with rustls (ring provider, no OpenSSL), built from
//! [`SmtpUrl`], and what a server's answer means for a message: accepted, refused for good
//! (a 5xx), or worth another try (a 4xx, no connection, a timeout, a TLS failure).

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::settings::{Security, SmtpUrl};

/// A whole SMTP conversation takes at most this long per step.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An SMTP client for one server.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Scheme, host and port, for messages (never the password).
    server: String,
}

/// How a delivery attempt ended, with the server's answer (`250 2.0.0 Ok: queued`) or the
/// reason there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted(String),
    /// A 5xx: the server will never take this message.
    Refused(String),
    /// A 4xx, or no answer at all: try again later.
    Deferred(String),
}

impl Smtp {
    pub fn new(url: &SmtpUrl) -> Result<Self, String> {
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| format!("TLS set-up failed: {e}"))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .timeout(Some(TIMEOUT));
        builder = match url.security {
            Security::Plain => builder.tls(Tls::None),
            Security::StartTls => builder.tls(Tls::Required(tls(&url.host)?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls(&url.host)?)),
        };
        if let Some(user) = &url.user {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                url.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            server: url.to_string(),
        })
    }

    /// Where mail goes, for messages: scheme, host and port.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one complete message (`bytes`, headers included) from `from` to `to`.
    pub async fn send(&self, from: &Address, to: &str, bytes: &[u8]) -> Outcome {
        let to: Address = match to.parse() {
            Ok(a) => a,
            Err(e) => return Outcome::Refused(format!("{to:?} is not an address: {e}")),
        };
        let envelope = match Envelope::new(Some(from.clone()), vec![to]) {
            Ok(e) => e,
            Err(e) => return Outcome::Refused(format!("no envelope: {e}")),
        };
        match self.transport.send_raw(&envelope, bytes).await {
            Ok(response) => Outcome::Accepted(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => Outcome::Refused(e.to_string()),
            Err(e) => Outcome::Deferred(e.to_string()),
        }
    }
}
