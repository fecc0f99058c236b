//! Passkeys (docs/behaviour.md §13.2): registering one for the signed-in user, signing in with
//! a discoverable one (no username, no password, no code), and listing, renaming and removing
//! them. Ceremony state lives in the store (any instance finishes what another began), is
//! taken once, lasts five minutes and is bounded per address group. A passkey cannot be
//! guessed, so its sign-in neither consults nor clears §4's lock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Accounts, Client, SignedIn};
use crate::audit::EventExt;
use crate::domain::PasskeyName;
use crate::security::passkey::{self, CeremonyId, CheckError, RelyingParty};
use crate::security::throttle::AddressKey;
use crate::store::passkeys::{
    CeremonyKind, NewCeremony, NewPasskey, PasskeyAdded, PasskeyListing, PasskeyUse,
};
use crate::store::{StoreError, User};

/// How long a ceremony may take (the browser is told the same).
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Live ceremonies one address group may hold: enough for a household behind one address,
/// too few for a script to fill the table.
pub const CEREMONIES_PER_ADDRESS: i64 = 20;

/// Why a passkey request did nothing.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// No relying party for this site as reached (no `--public-url`, not `localhost`).
    #[error("passkeys are not available here")]
    Unavailable,
    /// The address group holds too many live ceremonies.
    #[error("too many passkey ceremonies in progress")]
    Busy,
    /// The ceremony is unknown, used, expired, of another kind or another user.
    #[error("the passkey request expired")]
    Expired,
    /// The browser's answer is not a credential.
    #[error("malformed credential: {0}")]
    Malformed(String),
    /// The credential did not verify, is unknown, or its user cannot sign in.
    #[error("the passkey was not accepted")]
    Rejected,
    /// This credential is registered already.
    #[error("this passkey is registered already")]
    Duplicate,
    /// The user holds the most passkeys allowed.
    #[error("too many passkeys")]
    TooMany,
    /// No such passkey of this user.
    #[error("no such passkey")]
    NotFound,
    /// Right passkey, but `--email-verification required` waits for the address.
    #[error("email not confirmed")]
    EmailUnverified {
        user_id: i64,
        username: String,
        email: Option<String>,
    },
    #[error("passkey state: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CheckError> for PasskeyError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Malformed(m) => PasskeyError::Malformed(m),
            CheckError::Refused(why) => {
                tracing::info!(%why, "passkey refused");
                PasskeyError::Rejected
            }
            CheckError::Internal(m) => PasskeyError::Internal(m),
        }
    }
}

/// A ceremony begun: the id the browser sends back and its `publicKey` options.
#[derive(Debug)]
pub struct CeremonyStarted {
    pub ceremony: CeremonyId,
    pub public_key: serde_json::Value,
}

/// What a registration ceremony keeps beside webauthn-rs's state.
#[derive(Serialize, Deserialize)]
struct Registering {
    state: String,
    name: String,
    handle: Vec<u8>,
}

/// How an address group is stored (as the throttle groups addresses).
fn address_group(client: &Client) -> String {
    match client.addr.map(AddressKey::of) {
        Some(AddressKey::V4(v4)) => std::net::Ipv4Addr::from(v4).to_string(),
        Some(AddressKey::V6Prefix(p)) => {
            format!("{}/64", std::net::Ipv6Addr::from(u128::from(p) << 64))
        }
        None => "unknown".into(),
    }
}

fn fresh_handle() -> Vec<u8> {
    let mut b = vec![0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

impl Accounts {
    /// Keeps a ceremony's state; `Busy` when the address group has too many.
    async fn keep_ceremony(
        &self,
        kind: CeremonyKind,
        user_id: Option<i64>,
        state: String,
        client: &Client,
    ) -> Result<CeremonyId, PasskeyError> {
        let id = CeremonyId::generate();
        let now = self.now_ms();
        let kept = self
            .store
            .create_ceremony(NewCeremony {
                hash: id.hash(),
                kind,
                user_id,
                address: address_group(client),
                state,
                now_ms: now,
                expires_ms: now + CEREMONY_TTL.as_millis() as i64,
                max_live: CEREMONIES_PER_ADDRESS,
            })
            .await?;
        if kept {
            Ok(id)
        } else {
            Err(PasskeyError::Busy)
        }
    }

    /// Takes a ceremony of `kind` (for `user_id`): once only, within its five minutes.
    async fn take_ceremony(
        &self,
        wire: &str,
        kind: CeremonyKind,
        user_id: Option<i64>,
    ) -> Result<String, PasskeyError> {
        let id = CeremonyId::parse(wire).ok_or(PasskeyError::Expired)?;
        let taken = self.store.take_ceremony(id.hash(), self.now_ms()).await?;
        match taken {
            Some(t) if t.kind == kind && t.user_id == user_id => Ok(t.state),
            _ => Err(PasskeyError::Expired),
        }
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys(&self, user_id: i64) -> Result<Vec<PasskeyListing>, StoreError> {
        self.store.passkeys_of(user_id).await
    }

    /// Begins registering a passkey named `name` for the signed-in `user`.
    pub async fn start_passkey_registration(
        &self,
        rp: &RelyingParty,
        user: &User,
        name: PasskeyName,
        client: &Client,
    ) -> Result<CeremonyStarted, PasskeyError> {
        let handle = self
            .store
            .passkey_user_handle(user.id, fresh_handle())
            .await?;
        let exclude = self
            .store
            .passkeys_of(user.id)
            .await?
            .into_iter()
            .map(|p| p.credential_id)
            .collect();
        let display = user.full_name.as_deref().unwrap_or(&user.username);
        let started = passkey::start_registration(rp, &handle, &user.username, display, exclude)?;
        let state = serde_json::to_string(&Registering {
            state: started.state,
            name: name.as_str().to_owned(),
            handle,
        })
        .map_err(|e| PasskeyError::Internal(e.to_string()))?;
        let ceremony = self
            .keep_ceremony(CeremonyKind::Register, Some(user.id), state, client)
            .await?;
        Ok(CeremonyStarted {
            ceremony,
            public_key: started.public_key,
        })
    }

    /// Finishes a registration: checks the browser's answer and stores the passkey.
    pub async fn finish_passkey_registration(
        &self,
        rp: &RelyingParty,
        user: &User,
        ceremony: &str,
        credential: serde_json::Value,
        client: &Client,
    ) -> Result<i64, PasskeyError> {
        let state = self
            .take_ceremony(ceremony, CeremonyKind::Register, Some(user.id))
            .await?;
        let kept: Registering =
            serde_json::from_str(&state).map_err(|e| PasskeyError::Internal(e.to_string()))?;
        let name =
            PasskeyName::parse(&kept.name).map_err(|e| PasskeyError::Internal(e.to_owned()))?;
        let registered = passkey::finish_registration(rp, &kept.state, credential)?;
        let added = self
            .store
            .add_passkey(NewPasskey {
                user_id: user.id,
                credential_id: registered.credential_id,
                user_handle: kept.handle,
                name: name.clone(),
                passkey: registered.passkey,
                counter: 0,
                now_ms: self.now_ms(),
            })
            .await?;
        match added {
            PasskeyAdded::Added(id) => {
                self.audit.record(
                    self.event("passkey_added", "ok", client)
                        .user(Some(&user.username), Some(user.id))
                        .detail(name.as_str()),
                );
                tracing::info!(event = "passkey_added", username = %user.username, "passkey added");
                Ok(id)
            }
            PasskeyAdded::Duplicate => Err(PasskeyError::Duplicate),
            PasskeyAdded::TooMany => Err(PasskeyError::TooMany),
        }
    }

    /// Begins a sign-in with a discoverable passkey.
    pub async fn start_passkey_sign_in(
        &self,
        rp: &RelyingParty,
        client: &Client,
    ) -> Result<CeremonyStarted, PasskeyError> {
        let started = passkey::start_sign_in(rp)?;
        let ceremony = self
            .keep_ceremony(CeremonyKind::Authenticate, None, started.state, client)
            .await?;
        Ok(CeremonyStarted {
            ceremony,
            public_key: started.public_key,
        })
    }

    /// Finishes a passkey sign-in: the credential, its user handle, signature and counter,
    /// then a session as a password sign-in opens one (replacing `replaces`).
    pub async fn finish_passkey_sign_in(
        &self,
        rp: &RelyingParty,
        ceremony: &str,
        credential: serde_json::Value,
        client: &Client,
        replaces: Option<[u8; 32]>,
    ) -> Result<SignedIn, PasskeyError> {
        let state = self
            .take_ceremony(ceremony, CeremonyKind::Authenticate, None)
            .await?;
        let assertion = passkey::identify(credential)?;
        let stored = self
            .store
            .passkey_by_credential(assertion.credential_id.clone())
            .await?;
        let Some(stored) = stored.filter(|s| s.user_handle == assertion.user_handle) else {
            self.audit(client, "passkey_used", "unknown", None, None);
            return Err(PasskeyError::Rejected);
        };
        let (name, user_id) = (Some(stored.username.as_str()), Some(stored.user_id));
        let verified = match passkey::finish_sign_in(rp, &state, &assertion, &stored.passkey) {
            Ok(v) => v,
            Err(e) => {
                self.audit(client, "passkey_used", "failed", name, user_id);
                return Err(e.into());
            }
        };
        let now = self.now_ms();
        let recorded = self
            .store
            .record_passkey_use(PasskeyUse {
                id: stored.id,
                old_counter: stored.counter,
                new_counter: i64::from(verified.counter),
                passkey: verified.passkey,
                now_ms: now,
            })
            .await?;
        if !recorded {
            // Another use of this passkey was recorded since it was read: a clone, or a race.
            self.audit(client, "passkey_used", "failed", name, user_id);
            return Err(PasskeyError::Rejected);
        }
        let creds = self.store.credentials_by_id(stored.user_id).await?;
        let Some(creds) = creds.filter(|c| c.active) else {
            return Err(PasskeyError::Rejected);
        };
        if self.verification == crate::config::EmailVerification::Required && !creds.email_verified
        {
            self.audit(client, "sign_in", "unverified", name, user_id);
            return Err(PasskeyError::EmailUnverified {
                user_id: stored.user_id,
                username: stored.username,
                email: creds.email,
            });
        }
        self.audit.record(
            self.event("passkey_used", "ok", client)
                .user(name, user_id)
                .detail(stored.name.as_str()),
        );
        let event = self
            .sign_in_event(client, &stored.username, stored.user_id)
            .detail("passkey");
        let session = self
            .open_session(
                stored.user_id,
                creds.password_changed_ms,
                client,
                replaces,
                event,
            )
            .await?
            .ok_or(PasskeyError::Rejected)?;
        tracing::info!(event = "sign_in", username = %stored.username, outcome = "ok", method = "passkey", ip = client.ip.as_deref().unwrap_or("-"), "signed in");
        Ok(SignedIn {
            device_token: crate::security::device::issue(
                &self.key,
                stored.user_id,
                creds.password_changed_ms,
                now,
            ),
            username: stored.username,
            session,
        })
    }

    /// Renames one of the user's passkeys.
    pub async fn rename_passkey(
        &self,
        user_id: i64,
        id: i64,
        name: PasskeyName,
    ) -> Result<(), PasskeyError> {
        if self.store.rename_passkey(user_id, id, name).await? {
            Ok(())
        } else {
            Err(PasskeyError::NotFound)
        }
    }

    /// Removes one of the user's passkeys (the last one too: the password stays).
    pub async fn remove_passkey(
        &self,
        user: &User,
        id: i64,
        client: &Client,
    ) -> Result<(), PasskeyError> {
        let Some(name) = self.store.remove_passkey(user.id, id).await? else {
            return Err(PasskeyError::NotFound);
        };
        self.audit.record(
            self.event("passkey_removed", "ok", client)
                .user(Some(&user.username), Some(user.id))
                .detail(name),
        );
        tracing::info!(event = "passkey_removed", username = %user.username, "passkey removed");
        Ok(())
    }
}
