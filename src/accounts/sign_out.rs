//! Ending sessions: signing out this browser's session, and revoking one or all other
//! sessions of the signed-in user from `/account`.

use super::{Accounts, Client};
use crate::audit::EventExt;
use crate::store::{StoreError, User};

impl Accounts {
    /// Deletes the browser's session (valid or not, by the hash of the presented token) and
    /// audits the sign-out of `user` when the session was theirs.
    pub async fn sign_out(
        &self,
        presented: Option<[u8; 32]>,
        user: Option<&User>,
        client: &Client,
    ) -> Result<(), StoreError> {
        if let Some(hash) = presented {
            self.store.delete_session_by_hash(hash).await?;
        }
        if let Some(user) = user {
            tracing::info!(event = "sign_out", username = %user.username, "signed out");
            self.audit(
                client,
                "sign_out",
                "ok",
                Some(&user.username),
                Some(user.id),
            );
        }
        Ok(())
    }

    /// Ends one of `user`'s sessions; `false` when it was not theirs or already gone.
    pub async fn revoke_session(
        &self,
        user: &User,
        session_id: i64,
        client: &Client,
    ) -> Result<bool, StoreError> {
        let deleted = self.store.delete_user_session(user.id, session_id).await?;
        if deleted {
            tracing::info!(event = "session_revoked", username = %user.username, session = session_id, "session revoked");
            self.audit.record(
                self.event("session_revoke", "ok", client)
                    .user(Some(&user.username), Some(user.id))
                    .detail(format!("session {session_id}")),
            );
        }
        Ok(deleted)
    }

    /// Ends every session of `user` but `keep`; returns how many ended.
    pub async fn revoke_other_sessions(
        &self,
        user: &User,
        keep: i64,
        client: &Client,
    ) -> Result<usize, StoreError> {
        let n = self.store.delete_other_sessions(user.id, keep).await?;
        tracing::info!(event = "sessions_revoked", username = %user.username, count = n, "other sessions revoked");
        self.audit.record(
            self.event("session_revoke", "ok", client)
                .user(Some(&user.username), Some(user.id))
                .detail(format!("all other sessions ({n})")),
        );
        Ok(n)
    }
}
