//! Asking for a reset link by username or email (docs/behaviour.md §11.2). The answer is the
//! same for every login and is given before anything about the login is known: the request
//! only counts against the client's address (the throttle is the one thing it may answer),
//! then hands the lookup, the token and the outbox write to a task of its own. Known,
//! unknown, unverified and over-budget logins therefore cost the client the same time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::attempts::Refused;
use super::{Accounts, AuditSink, Client};
use crate::clock::Clock;
use crate::mail::{MailKind, Mailer};
use crate::security::token::{LinkToken, Purpose};
use crate::store::tokens::{LoginMatch, NewToken, TokenIssued, TokenMail};
use crate::store::{Enqueued, Store};

/// The audit event of a reset request.
const KIND: &str = "password_reset_request";

/// Reset requests whose background work may wait or run at once; past it a request is
/// answered as usual and its work dropped (counted), so a flood from many addresses cannot
/// pile up tasks without bound.
const BACKLOG: usize = 256;

/// Longest login looked up: an email is at most 254 characters, a username 32.
const MAX_LOGIN: usize = 254;

/// How reset links are mailed: `--reset-ttl` and `--reset-mails-per-hour`.
#[derive(Clone, Copy, Debug)]
pub struct ResetPolicy {
    pub ttl: Duration,
    pub mails_per_hour: u32,
}

impl Default for ResetPolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            mails_per_hour: 3,
        }
    }
}

/// What a reset request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetAsked {
    /// Taken: if an account matches and has a verified email, a link is on its way.
    Accepted,
    /// The site sends no mail (no `--smtp-url`): the operator issues links.
    MailOff,
}

/// The background work of reset requests, shared by all of them.
pub(super) struct ResetDesk {
    pub(super) policy: ResetPolicy,
    backlog: Arc<Semaphore>,
}

impl ResetDesk {
    pub(super) fn new(policy: ResetPolicy) -> Self {
        Self {
            policy,
            backlog: Arc::new(Semaphore::new(BACKLOG)),
        }
    }
}

impl Accounts {
    /// Asks for a reset link for `login` (a username or an email, ASCII case ignored). Counts
    /// one failure against the client's address (`Err` once past `--ip-failures`), then
    /// answers at once; the lookup and the mail happen in a spawned task, audited there.
    pub async fn request_reset(&self, login: &str, client: &Client) -> Result<ResetAsked, Refused> {
        let Some(mailer) = self.mail.clone() else {
            return Ok(ResetAsked::MailOff);
        };
        self.reserve_address(client)
            .await
            .inspect_err(|_| self.throttled(client, KIND, None))?;
        let Ok(permit) = self.reset.backlog.clone().try_acquire_owned() else {
            crate::metrics::mail_dropped("reset_backlog");
            self.audit(client, KIND, "backlog_full", None, None);
            return Ok(ResetAsked::Accepted);
        };
        let job = Job {
            store: self.store.clone(),
            clock: self.clock.clone(),
            audit: self.audit.clone(),
            mailer,
            policy: self.reset.policy,
            login: login.trim().to_owned(),
            client: client.clone(),
        };
        tokio::spawn(async move {
            job.run().await;
            drop(permit);
        });
        Ok(ResetAsked::Accepted)
    }
}

/// One request's work after its answer.
struct Job {
    store: Store,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn AuditSink>,
    mailer: Arc<Mailer>,
    policy: ResetPolicy,
    login: String,
    client: Client,
}

impl Job {
    async fn run(self) {
        let (outcome, user) = match self.mail_link().await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(event = KIND, "reset request not handled: {e}");
                ("error", None)
            }
        };
        if outcome == "mailed" {
            self.mailer.wake();
        }
        use crate::audit::EventExt;
        let (username, user_id) = match &user {
            Some(u) => (Some(u.username.as_str()), Some(u.user_id)),
            None => (None, None),
        };
        self.audit.record(
            crate::audit::event_at(KIND, outcome, self.clock.now().as_ms())
                .client(self.client.ip.as_deref(), self.client.user_agent.as_deref())
                .user(username, user_id),
        );
        tracing::info!(
            event = KIND,
            outcome,
            username = username.unwrap_or("-"),
            "reset link requested"
        );
    }

    /// What became of the request (the audit outcome), and the account it named. The lookup
    /// runs on the store's pool and the mail's rendering and sealing on the blocking pool, so
    /// the HTTP worker's next request never waits behind a known login's work.
    async fn mail_link(&self) -> Result<(&'static str, Option<LoginMatch>), BoxError> {
        if self.login.is_empty() || self.login.len() > MAX_LOGIN {
            return Ok(("unknown", None));
        }
        let Some(user) = self.store.find_login(self.login.clone()).await? else {
            return Ok(("unknown", None));
        };
        let to = match (&user.email, user.email_verified) {
            (None, _) => return Ok(("no_email", Some(user))),
            (Some(_), false) => return Ok(("unverified", Some(user))),
            (Some(to), true) => to.clone(),
        };
        let now = self.clock.now().as_ms();
        let (mailer, client, policy) = (self.mailer.clone(), self.client.clone(), self.policy);
        let username = user.username.clone();
        let (token, mail) = tokio::task::spawn_blocking(move || {
            compose(&mailer, &to, &username, &client, policy, now)
        })
        .await??;
        let expires = mail.expires_ms;
        let issued = self
            .store
            .create_token_with_mail(
                NewToken {
                    hash: token.hash(),
                    user_id: user.user_id,
                    purpose: Purpose::Reset,
                    email: None,
                    now_ms: now,
                    expires_ms: expires,
                },
                TokenMail {
                    mail,
                    limits: *self.mailer.limits(),
                    per_hour: Some(i64::from(self.policy.mails_per_hour)),
                },
            )
            .await?;
        let outcome = match issued {
            TokenIssued::Issued(Enqueued::Queued) => "mailed",
            TokenIssued::Issued(Enqueued::DroppedRate) => "recipient_rate",
            TokenIssued::Issued(Enqueued::DroppedFull) => "outbox_full",
            TokenIssued::OverBudget => "over_budget",
        };
        Ok((outcome, Some(user)))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A new token and its reset mail to `to`, rendered and sealed.
fn compose(
    mailer: &Mailer,
    to: &str,
    username: &str,
    client: &Client,
    policy: ResetPolicy,
    now: i64,
) -> Result<(LinkToken, crate::store::NewMail), crate::mail::ComposeError> {
    let token = LinkToken::generate();
    let kind = MailKind::PasswordReset {
        username: username.to_owned(),
        link: mailer.link(&format!("/password-reset/{}", token.as_str())),
        expires_in: policy.ttl,
        browser: client
            .user_agent
            .as_deref()
            .map_or_else(|| "an unknown browser".into(), crate::user_agent::describe),
        ip: client
            .ip
            .clone()
            .unwrap_or_else(|| "an unknown address".into()),
    };
    let expires = now + policy.ttl.as_millis() as i64;
    let mail = mailer.compose(to, &kind, now, expires)?;
    Ok((token, mail))
}
