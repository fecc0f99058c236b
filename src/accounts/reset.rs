//! Password reset by a one-time link (docs/behaviour.md §11.2): the link's page shows the user
//! it opens (a GET never consumes it), its form sets a new password in one write that consumes
//! the link, ends every session, forgives the fail-lock and kills every other reset link. It
//! never signs the user in. `gatehouse user reset-link` issues such a link without mail.

use std::time::Duration;

use super::attempts::Refused;
use super::sign_up::new_password_digest;
use super::{Accounts, Client, FieldErrors, PasswordInput};
use crate::security::password::KdfError;
use crate::security::token::{LinkToken, Purpose};
use crate::store::StoreError;
use crate::store::tokens::{NewToken, TokenUser};

/// Why a reset link did not set a password.
#[derive(Debug, thiserror::Error)]
pub enum LinkResetError {
    /// Unknown, used, superseded, expired or killed by a password change: 410.
    #[error("the link is no longer valid")]
    Gone,
    #[error("invalid fields")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    /// The user a live reset link opens; `None` for any other link. Reads only.
    pub async fn reset_link_user(
        &self,
        token: &LinkToken,
    ) -> Result<Option<TokenUser>, StoreError> {
        self.store
            .find_token(&token.hash(), Purpose::Reset, self.now_ms())
            .await
    }

    /// Sets a new password through a live reset link.
    pub async fn reset_with_link(
        &self,
        token: &LinkToken,
        new: PasswordInput<'_>,
        client: &Client,
    ) -> Result<TokenUser, LinkResetError> {
        let Some(user) = self.reset_link_user(token).await? else {
            return Err(LinkResetError::Gone);
        };
        let mut errors = FieldErrors::default();
        let Some(digest) = new_password_digest(
            &user.username,
            &new,
            ["new_password", "new_password_repeat", "new_password_digest"],
            &mut errors,
        ) else {
            return Err(LinkResetError::Invalid(errors));
        };
        let name = Some(user.username.as_str());
        self.spend_kdf(client, "password_reset", name).await?;
        let hash = self.kdf.run(move |kdf| kdf.hash(&digest)).await??;
        let now = self.now_ms();
        let notice = self.password_changed_notice(&user, client, now);
        let Some(done) = self
            .store
            .reset_password_with_token(token.hash(), hash, now, notice)
            .await?
        else {
            // Used (or superseded) while the new password was hashing.
            return Err(LinkResetError::Gone);
        };
        if let Some(mail) = &self.mail {
            mail.wake();
        }
        self.audit(client, "password_reset", "ok", name, Some(done.user_id));
        tracing::info!(event = "password_reset", username = %done.username, outcome = "ok", "password set through a reset link");
        Ok(done)
    }

    /// "Your password was changed", for the account's confirmed address only (an unconfirmed
    /// one may not be the user's), when mail is on.
    fn password_changed_notice(
        &self,
        user: &TokenUser,
        client: &Client,
        now_ms: i64,
    ) -> Option<(crate::store::NewMail, crate::store::OutboxLimits)> {
        let mailer = self.mail.as_ref()?;
        let to = user
            .account_email
            .as_deref()
            .filter(|_| user.account_email_verified)?;
        let kind = crate::mail::MailKind::PasswordChanged {
            username: user.username.clone(),
            browser: client
                .user_agent
                .as_deref()
                .map_or_else(|| "an unknown browser".into(), crate::user_agent::describe),
            ip: client
                .ip
                .clone()
                .unwrap_or_else(|| "an unknown address".into()),
        };
        // A notice carries no link: a day to deliver it is plenty.
        match mailer.compose(to, &kind, now_ms, now_ms + 86_400_000) {
            Ok(mail) => Some((mail, *mailer.limits())),
            Err(e) => {
                tracing::warn!("password-changed notice not composed: {e}");
                None
            }
        }
    }

    /// A new reset link for `user_id`, valid for `ttl`, superseding the user's earlier one.
    pub async fn issue_reset_link(
        &self,
        user_id: i64,
        ttl: Duration,
    ) -> Result<LinkToken, StoreError> {
        let token = LinkToken::generate();
        let now = self.now_ms();
        self.store
            .create_token(NewToken {
                hash: token.hash(),
                user_id,
                purpose: Purpose::Reset,
                email: None,
                now_ms: now,
                expires_ms: now + ttl.as_millis() as i64,
            })
            .await?;
        Ok(token)
    }
}
