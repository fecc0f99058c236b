//! The account use cases shared by the HTML pages, the JSON API and the admin CLI: sign-up,
//! sign-in, password change, sign-out and session revocation (docs/design.md, "Service
//! layer"). They know nothing of HTTP: each takes already-read fields and returns a typed
//! outcome that the web layer (`web/messages.rs`) turns into a status and wording. The
//! rules (validation order, fail-lock, KDF, conditional writes) live here once.

mod attempts;
mod change_password;
mod code_step;
mod confirm;
mod passkeys;
mod profile;
mod reset;
mod reset_request;
mod sign_in;
mod sign_out;
mod sign_up;
#[cfg(test)]
mod tests;
mod two_step;
mod verify;

use std::net::IpAddr;
use std::sync::Arc;

pub use attempts::Refused;
pub use change_password::{ChangeError, ResetError};
pub use code_step::{CodeError, PENDING_TTL, PasswordPassed};
pub use confirm::ConfirmError;
pub use passkeys::{CEREMONIES_PER_ADDRESS, CEREMONY_TTL, CeremonyStarted, PasskeyError};
pub use profile::{ProfileChanged, ProfileError, ProfileInput};
pub use reset::LinkResetError;
pub use reset_request::{ResetAsked, ResetPolicy};
pub use sign_in::SignInError;
pub use sign_up::{SignUpError, SignUpInput, SignedUp};
pub use two_step::{ISSUER, SecondFactor, TotpSetUp, TwoStepError};
pub use verify::{Resent, VERIFY_TTL};

use crate::clock::{Clock, Timestamp};
use crate::domain::Username;
use crate::security::limits::{AddressLimits, AttemptLock};
use crate::security::password::KdfPool;
use crate::security::secret::SecretKey;
use crate::security::session::{SessionId, SessionPolicy};
use crate::store::{AuditEvent, Store};

/// Where the flows write their audit events, and count the ones the store writes itself.
pub trait AuditSink: Send + Sync {
    /// Queues an event for the audit trail (never blocks).
    fn record(&self, event: AuditEvent);
    /// Counts an event written elsewhere (a sign-in's row goes in with its session).
    fn count(&self, kind: &'static str, outcome: &'static str);
}

impl AuditSink for crate::audit::AuditLog {
    fn record(&self, event: AuditEvent) {
        crate::audit::AuditLog::record(self, event);
    }

    fn count(&self, kind: &'static str, outcome: &'static str) {
        self.count(kind, outcome);
    }
}

/// The account service: the narrow dependencies every use case needs, passed in once.
pub struct Accounts {
    pub store: Store,
    pub kdf: KdfPool,
    /// Every time the flows read: lock and throttle windows, session and audit times.
    pub clock: Arc<dyn Clock>,
    pub lock: Arc<AttemptLock<Username>>,
    /// Failures of browsers that hold a device token, keyed by device id.
    pub device_lock: Arc<AttemptLock<String>>,
    /// The per-address limits; `None` only for the admin CLI ([`Accounts::for_admin`]).
    limits: Option<Arc<AddressLimits>>,
    /// Signs and checks device tokens.
    pub key: SecretKey,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    pub audit: Arc<dyn AuditSink>,
    /// Outgoing mail; `None` without `--smtp-url` (nothing is mailed).
    pub mail: Option<Arc<crate::mail::Mailer>>,
    /// `--email-verification`.
    pub verification: crate::config::EmailVerification,
    /// Reset requests' rules and their background work.
    reset: reset_request::ResetDesk,
}

/// What [`Accounts::new`] is built from.
pub struct Deps {
    pub store: Store,
    pub kdf: KdfPool,
    pub clock: Arc<dyn Clock>,
    pub lock: Arc<AttemptLock<Username>>,
    pub device_lock: Arc<AttemptLock<String>>,
    pub key: SecretKey,
    pub sessions: SessionPolicy,
    pub audit: Arc<dyn AuditSink>,
}

impl Accounts {
    /// The service as the site runs it: every attempt passes the address limits.
    pub fn new(deps: Deps, limits: Arc<AddressLimits>) -> Self {
        Self::build(deps, Some(limits))
    }

    /// The service as the admin CLI runs it: the operator is not a network client, so no
    /// address limit applies. The server never builds one of these.
    pub fn for_admin(deps: Deps) -> Self {
        Self::build(deps, None)
    }

    fn build(deps: Deps, limits: Option<Arc<AddressLimits>>) -> Self {
        let Deps {
            store,
            kdf,
            clock,
            lock,
            device_lock,
            key,
            sessions,
            audit,
        } = deps;
        Self {
            store,
            kdf,
            clock,
            lock,
            device_lock,
            limits,
            key,
            sessions,
            audit,
            mail: None,
            verification: Default::default(),
            reset: reset_request::ResetDesk::new(ResetPolicy::default()),
        }
    }

    /// The service under `--email-verification`.
    pub fn with_email_verification(mut self, v: crate::config::EmailVerification) -> Self {
        self.verification = v;
        self
    }

    /// The service with outgoing mail.
    pub fn with_mail(mut self, mail: Option<Arc<crate::mail::Mailer>>) -> Self {
        self.mail = mail;
        self
    }

    /// The service with `--reset-ttl` and `--reset-mails-per-hour`.
    pub fn with_reset(mut self, policy: ResetPolicy) -> Self {
        self.reset = reset_request::ResetDesk::new(policy);
        self
    }

    /// How long a mailed reset link works (`--reset-ttl`), for the pages that say so.
    pub fn reset_ttl(&self) -> std::time::Duration {
        self.reset.policy.ttl
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().as_ms()
    }

    /// An audit event at the service's time, from `client`.
    fn event(&self, kind: &'static str, outcome: &'static str, client: &Client) -> AuditEvent {
        use crate::audit::EventExt;
        crate::audit::event_at(kind, outcome, self.now_ms())
            .client(client.ip.as_deref(), client.user_agent.as_deref())
    }

    /// Writes an audit event about `client`'s attempt.
    fn audit(
        &self,
        client: &Client,
        kind: &'static str,
        outcome: &'static str,
        username: Option<&str>,
        user_id: Option<i64>,
    ) {
        use crate::audit::EventExt;
        self.audit
            .record(self.event(kind, outcome, client).user(username, user_id));
    }
}

/// How a password arrived: pre-digested by the page's JS, or typed (no JS, or the API).
pub enum PasswordInput<'a> {
    Digest(&'a str),
    Plain {
        password: &'a str,
        repeat: Option<&'a str>,
    },
    Missing,
}

impl<'a> PasswordInput<'a> {
    /// From form fields: a non-empty digest wins over a plain field; empty counts as absent.
    pub fn from_form(
        digest: Option<&'a str>,
        plain: Option<&'a str>,
        repeat: Option<&'a str>,
    ) -> Self {
        match (
            digest.filter(|d| !d.is_empty()),
            plain.filter(|p| !p.is_empty()),
        ) {
            (Some(d), _) => PasswordInput::Digest(d),
            (None, Some(p)) => PasswordInput::Plain {
                password: p,
                repeat,
            },
            (None, None) => PasswordInput::Missing,
        }
    }
}

/// What is wrong with one field. The web layer words the flows' own problems; a rule of
/// [`crate::domain`] or the digest format comes with its own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Refused by a domain constructor or the digest format, with its reason.
    Rejected(String),
    /// No new password was given.
    MissingPassword,
    /// No current password was given.
    MissingCurrentPassword,
    /// The repeated password differs.
    PasswordsDiffer,
}

/// Problems by field name, in the order found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, Problem)>);

impl FieldErrors {
    fn add(&mut self, field: &'static str, problem: Problem) {
        self.0.push((field, problem));
    }

    fn reject(&mut self, field: &'static str, message: impl Into<String>) {
        self.add(field, Problem::Rejected(message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who is asking, for the address limits, the session row and logs.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub addr: Option<IpAddr>,
    /// The browser's device cookie, if any (checked against the user being signed in).
    pub device: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A successful sign-in: who, the new session, and a fresh device token for the browser.
#[derive(Debug)]
pub struct SignedIn {
    pub username: String,
    pub session: SessionId,
    pub device_token: String,
}
