//! The state every request handler shares: storage, the KDF pool, the lock and throttle tables,
//! the secret key and the site's settings. Built once by [`crate::server`].

use std::time::Duration;

use actix_web::web;
use ipnet::IpNet;

use crate::security::faillock::FailLock;
use crate::security::password::KdfPool;
use crate::security::secret::SecretKey;
use crate::security::session::SessionPolicy;
use crate::store::Store;

/// Everything a request handler needs, shared by all workers.
pub struct AppState {
    pub store: Store,
    pub kdf: KdfPool,
    pub lock: FailLock,
    /// Failures of browsers that hold a device token, keyed by device id.
    pub device_lock: FailLock<String>,
    pub guard: crate::security::throttle::AddressGuard,
    pub key: SecretKey,
    pub sessions: SessionPolicy,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    pub audit: crate::audit::AuditLog,
    pub sign_up_open: bool,
    pub audit_retention: Duration,
}

pub type State = web::Data<AppState>;
