//! Passkeys and WebAuthn ceremonies in the storage interface (docs/behaviour.md §13.2): a
//! user's registered credentials (webauthn-rs's serialised form, opaque here), and the state of
//! ceremonies in progress, kept in the database so any instance can finish what another began.

use super::{Result, Store};
use crate::domain::PasskeyName;

/// How many passkeys one account may hold (a bound on what a signed-in user can store).
pub const MAX_PER_USER: i64 = 20;

/// A credential to store once its registration ceremony succeeded.
#[derive(Clone, Debug)]
pub struct NewPasskey {
    pub user_id: i64,
    pub credential_id: Vec<u8>,
    /// The WebAuthn user id the credential was registered under.
    pub user_handle: Vec<u8>,
    pub name: PasskeyName,
    /// webauthn-rs's `Passkey`, as JSON.
    pub passkey: String,
    pub counter: i64,
    pub now_ms: i64,
}

/// What [`Store::add_passkey`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyAdded {
    Added(i64),
    /// The credential id is registered already (to this user or another).
    Duplicate,
    /// The user holds [`MAX_PER_USER`] passkeys (or no longer exists).
    TooMany,
}

/// A passkey as the account page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyListing {
    pub id: i64,
    pub credential_id: Vec<u8>,
    pub name: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

/// A stored passkey found by its credential id, with its (active) user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub user_handle: Vec<u8>,
    pub name: String,
    pub passkey: String,
    pub counter: i64,
}

/// A passkey's use: its new state, written only if its counter is still `old_counter`.
#[derive(Clone, Debug)]
pub struct PasskeyUse {
    pub id: i64,
    pub old_counter: i64,
    pub new_counter: i64,
    pub passkey: String,
    pub now_ms: i64,
}

/// Which ceremony.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyKind {
    Register,
    Authenticate,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::Authenticate => "authenticate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "register" => Some(CeremonyKind::Register),
            "authenticate" => Some(CeremonyKind::Authenticate),
            _ => None,
        }
    }
}

/// A ceremony to keep until it is finished (or expires).
#[derive(Clone, Debug)]
pub struct NewCeremony {
    /// SHA-256 of the random id the browser holds.
    pub hash: [u8; 32],
    pub kind: CeremonyKind,
    /// The signed-in user a registration is for; `None` for a sign-in.
    pub user_id: Option<i64>,
    /// The client's address group (IPv4 address, IPv6 /64).
    pub address: String,
    /// webauthn-rs's ceremony state, as JSON.
    pub state: String,
    pub now_ms: i64,
    pub expires_ms: i64,
    /// At most this many live ceremonies per address group: past it, refused.
    pub max_live: i64,
}

/// A ceremony taken (and so deleted) for finishing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenCeremony {
    pub kind: CeremonyKind,
    pub user_id: Option<i64>,
    pub address: String,
    pub state: String,
}

impl Store {
    /// Stores a passkey, unless its credential id is known or the user has too many.
    pub async fn add_passkey(&self, new: NewPasskey) -> Result<PasskeyAdded> {
        backend!(self, s => s.blocking(move |s| s.add_passkey(&new)).await, p => p.add_passkey(new).await)
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyListing>> {
        backend!(self, s => s.blocking(move |s| s.passkeys_of(user_id)).await, p => p.passkeys_of(user_id).await)
    }

    /// Renames passkey `id` if it is `user_id`'s. Returns whether it did.
    pub async fn rename_passkey(&self, user_id: i64, id: i64, name: PasskeyName) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.rename_passkey(user_id, id, &name)).await, p => p.rename_passkey(user_id, id, name).await)
    }

    /// Deletes passkey `id` if it is `user_id`'s; returns its name when it did.
    pub async fn remove_passkey(&self, user_id: i64, id: i64) -> Result<Option<String>> {
        backend!(self, s => s.blocking(move |s| s.remove_passkey(user_id, id)).await, p => p.remove_passkey(user_id, id).await)
    }

    /// The passkey with this credential id, if its user is active.
    pub async fn passkey_by_credential(
        &self,
        credential_id: Vec<u8>,
    ) -> Result<Option<StoredPasskey>> {
        backend!(self, s => s.blocking(move |s| s.passkey_by_credential(&credential_id)).await, p => p.passkey_by_credential(credential_id).await)
    }

    /// Records a use: the new state, counter and last-used time, in one conditional update
    /// (only while the stored counter is still `old_counter`, so of two uses racing with one
    /// counter value only one is recorded). Returns whether it was.
    pub async fn record_passkey_use(&self, used: PasskeyUse) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.record_passkey_use(&used)).await, p => p.record_passkey_use(used).await)
    }

    /// The WebAuthn user id of `user_id`'s passkeys, or `fresh` when the user has none.
    pub async fn passkey_user_handle(&self, user_id: i64, fresh: Vec<u8>) -> Result<Vec<u8>> {
        backend!(self, s => s.blocking(move |s| s.passkey_user_handle(user_id, fresh)).await, p => p.passkey_user_handle(user_id, fresh).await)
    }

    /// Stores a ceremony; `false` (nothing stored) when its address group already has
    /// `max_live` live ones.
    pub async fn create_ceremony(&self, new: NewCeremony) -> Result<bool> {
        backend!(self, s => s.blocking(move |s| s.create_ceremony(&new)).await, p => p.create_ceremony(new).await)
    }

    /// Takes (deletes and returns) the ceremony `hash`: once only, on any instance. An expired
    /// one is deleted and `None`.
    pub async fn take_ceremony(
        &self,
        hash: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<TakenCeremony>> {
        backend!(self, s => s.blocking(move |s| s.take_ceremony(&hash, now_ms)).await, p => p.take_ceremony(hash, now_ms).await)
    }

    /// Deletes expired ceremonies. Returns how many.
    pub async fn purge_ceremonies(&self, now_ms: i64) -> Result<usize> {
        backend!(self, s => s.blocking(move |s| s.purge_ceremonies(now_ms)).await, p => p.purge_ceremonies(now_ms).await)
    }
}
