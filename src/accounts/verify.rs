//! Email verification (docs/behaviour.md §11.3): a sign-up with an address, or a change of
//! address, stores a one-time link (24 h) and queues its mail in the same transaction; opening
//! the link shows a confirm button, and confirming makes the address the account's, verified.
//! Only a verified address receives reset links and notices, and only it is passed to apps as
//! `Remote-Email`.

use std::time::Duration;

use super::{Accounts, Client};
use crate::security::token::{LinkToken, Purpose};
use crate::store::StoreError;
use crate::store::tokens::{Confirmed, NewToken, TokenIssued, TokenMail, TokenUser, VerifyLink};

/// How long a verification link (and a pending new address) lasts.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a resend did; the page says the same in every case but `MailOff`.
#[derive(Debug, PartialEq, Eq)]
pub enum Resent {
    Queued,
    /// Nothing to confirm (no address, or already confirmed).
    NothingToConfirm,
    /// The hourly budget is spent; the last link stays good.
    OverBudget,
    MailOff,
}

impl Accounts {
    /// A verification link for `email` and its mail, when mail is on; `None` otherwise.
    pub(super) fn verify_link(
        &self,
        username: &str,
        email: &str,
        now_ms: i64,
    ) -> Option<(LinkToken, VerifyLink)> {
        if self.verification == crate::config::EmailVerification::Off {
            return None;
        }
        let mailer = self.mail.as_ref()?;
        let token = LinkToken::generate();
        let expires_ms = now_ms + VERIFY_TTL.as_millis() as i64;
        let kind = crate::mail::MailKind::VerifyEmail {
            username: username.to_owned(),
            link: mailer.link(&format!("/verify-email/{}", token.as_str())),
            expires_in: VERIFY_TTL,
        };
        match mailer.compose(email, &kind, now_ms, expires_ms) {
            Ok(mail) => Some((
                token.clone(),
                VerifyLink {
                    hash: token.hash(),
                    expires_ms,
                    mail,
                    limits: *mailer.limits(),
                },
            )),
            Err(e) => {
                tracing::warn!("verification mail not composed: {e}");
                None
            }
        }
    }

    /// Wakes the mail sender after a commit that queued mail.
    pub(super) fn mail_queued(&self) {
        if let Some(m) = &self.mail {
            m.wake();
        }
    }

    /// The user and address a live verification link opens. Reads only.
    pub async fn verify_link_user(
        &self,
        token: &LinkToken,
    ) -> Result<Option<TokenUser>, StoreError> {
        self.store
            .find_token(&token.hash(), Purpose::Verify, self.now_ms())
            .await
    }

    /// Confirms the address of a live verification link.
    pub async fn confirm_email(
        &self,
        token: &LinkToken,
        client: &Client,
    ) -> Result<Option<Confirmed>, StoreError> {
        let done = self
            .store
            .confirm_email(token.hash(), self.now_ms())
            .await?;
        match &done {
            Some(Confirmed::Email {
                user_id, username, ..
            }) => {
                self.audit(client, "email_verify", "ok", Some(username), Some(*user_id));
            }
            Some(Confirmed::Taken) => {
                self.audit(client, "email_verify", "taken", None, None);
            }
            None => {}
        }
        Ok(done)
    }

    /// Sends a new verification link for the address waiting to be confirmed (a pending new
    /// one first, else the account's unconfirmed one).
    pub async fn resend_verification(
        &self,
        user_id: i64,
        username: &str,
        to_confirm: Option<&str>,
        client: &Client,
    ) -> Result<Resent, StoreError> {
        let Some(email) = to_confirm else {
            return Ok(Resent::NothingToConfirm);
        };
        let now = self.now_ms();
        let Some((_, link)) = self.verify_link(username, email, now) else {
            return Ok(Resent::MailOff);
        };
        let issued = self
            .store
            .create_token_with_mail(
                NewToken {
                    hash: link.hash,
                    user_id,
                    purpose: Purpose::Verify,
                    email: Some(email.to_owned()),
                    now_ms: now,
                    expires_ms: link.expires_ms,
                },
                TokenMail {
                    mail: link.mail,
                    limits: link.limits,
                    // Throttled like reset mails: `--reset-mails-per-hour` an hour.
                    per_hour: Some(i64::from(self.reset.policy.mails_per_hour)),
                },
            )
            .await?;
        self.audit(
            client,
            "email_verify_resend",
            "ok",
            Some(username),
            Some(user_id),
        );
        Ok(match issued {
            TokenIssued::Issued(_) => {
                self.mail_queued();
                Resent::Queued
            }
            TokenIssued::OverBudget => Resent::OverBudget,
        })
    }
}

impl Accounts {
    /// For a user kept out until their address is confirmed: a corrected address becomes the
    /// pending one (its link mailed), else the link for the current one is sent again. `Err`
    /// is a sentence for the page (a bad or taken address).
    pub async fn set_address_and_resend(
        &self,
        user: &crate::store::UserDetails,
        typed: &str,
        client: &Client,
    ) -> Result<Result<(), &'static str>, StoreError> {
        let current = user.email.as_deref();
        let changed = !typed.is_empty() && !current.is_some_and(|c| c.eq_ignore_ascii_case(typed));
        if changed {
            let Ok(Some(email)) = crate::domain::Email::parse_optional(typed) else {
                return Ok(Err("That is not an email address we can send to."));
            };
            let now = self.now_ms();
            let verify = self
                .verify_link(&user.username, email.as_str(), now)
                .map(|(_, link)| link);
            let change = crate::store::profile::EmailChange {
                user_id: user.id,
                email,
                verify,
                notice: None,
                now_ms: now,
            };
            return Ok(match self.store.request_email_change(change).await? {
                Ok(()) => {
                    self.mail_queued();
                    self.audit(
                        client,
                        "email_change",
                        "pending",
                        Some(&user.username),
                        Some(user.id),
                    );
                    Ok(())
                }
                Err(_) => Err("An account with this email already exists."),
            });
        }
        let to_confirm = user.pending_email.as_deref().or(current);
        match self
            .resend_verification(user.id, &user.username, to_confirm, client)
            .await?
        {
            Resent::NothingToConfirm => Ok(Err("Enter your email address.")),
            _ => Ok(Ok(())),
        }
    }
}
