//! The state every request handler shares: storage, the KDF pool, the lock and throttle tables,
//! the secret key and the site's settings. Built once at start-up (`server.rs`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use ipnet::IpNet;

use crate::clock::Clock;
use crate::domain::Username;
use crate::security::limits::{AddressLimits, AttemptLock};
use crate::security::password::KdfPool;
use crate::security::secret::SecretKey;
use crate::security::session::SessionPolicy;
use crate::store::Store;

/// Everything a request handler needs, shared by all workers.
pub struct AppState {
    /// The account use cases, sharing the store, KDF pool, limits and audit log below.
    pub accounts: crate::accounts::Accounts,
    pub store: Store,
    pub kdf: KdfPool,
    /// Wall-clock time for the lock, the throttle and their housekeeping.
    pub clock: Arc<dyn Clock>,
    pub lock: Arc<AttemptLock<Username>>,
    /// Failures of browsers that hold a device token, keyed by device id.
    pub device_lock: Arc<AttemptLock<String>>,
    pub guard: Arc<AddressLimits>,
    pub key: SecretKey,
    pub sessions: SessionPolicy,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    pub audit: Arc<crate::audit::AuditLog>,
    pub sign_up_open: bool,
    pub audit_retention: Duration,
}

pub type State = web::Data<AppState>;
