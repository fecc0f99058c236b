//! The state every request handler shares: storage, the KDF pool, the lock and throttle tables,
//! the secret key and the site's settings. Built once at start-up (`server.rs`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use ipnet::IpNet;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::domain::Username;
use crate::security::faillock::FailLock;
use crate::security::limits::{AddressLimits, AttemptLock};
use crate::security::password::KdfPool;
use crate::security::secret::SecretKey;
use crate::security::session::SessionPolicy;
use crate::security::throttle::AddressGuard;
use crate::store::Store;
use crate::store::postgres::limits::{LockKind, PgAddressGuard, PgFailLock};

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
    /// Where forward-auth's `rd` may lead.
    pub forward: crate::security::forward::ForwardPolicy,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    pub audit: Arc<crate::audit::AuditLog>,
    pub sign_up_open: bool,
    pub audit_retention: Duration,
    /// Outgoing mail (`--smtp-url`); `None`: nothing is mailed.
    pub mail: Option<Arc<crate::mail::Mailer>>,
    pub email_verification: crate::config::EmailVerification,
}

pub type State = web::Data<AppState>;

/// What [`AppState::build`] assembles: the shared services and the site's settings.
pub struct Parts {
    pub store: Store,
    pub kdf: KdfPool,
    pub clock: Arc<dyn Clock>,
    pub key: SecretKey,
    pub sessions: SessionPolicy,
    pub audit: Arc<AuditLog>,
    /// The per-address limits.
    pub guard: AddressGuard,
    /// Failures before a username (or a device) locks, within `lock_window`; each lock's
    /// table holds at most `lock_capacity` records.
    pub lock_attempts: u32,
    pub lock_window: Duration,
    pub lock_capacity: usize,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub forward: crate::security::forward::ForwardPolicy,
    pub body_timeout: Duration,
    pub sign_up_open: bool,
    pub audit_retention: Duration,
    pub mail: Option<Arc<crate::mail::Mailer>>,
    pub email_verification: crate::config::EmailVerification,
    /// `--reset-ttl` and `--reset-mails-per-hour`.
    pub reset: crate::accounts::ResetPolicy,
}

impl AppState {
    /// The state over `parts`: the locks and limits (in memory on SQLite, in the database on
    /// PostgreSQL), and the account use cases sharing them with the handlers.
    pub fn build(parts: Parts) -> State {
        let Parts {
            store,
            kdf,
            clock,
            key,
            sessions,
            audit,
            guard,
            lock_attempts,
            lock_window,
            lock_capacity,
            public_url,
            trusted_proxies,
            forward,
            body_timeout,
            sign_up_open,
            audit_retention,
            mail,
            email_verification,
            reset,
        } = parts;
        // Usernames and devices lock by the same rule, each in its own table. On PostgreSQL
        // the tables are in the database, so every instance decides from the same records.
        let (lock, device_lock, guard) = match &store {
            Store::Postgres(pg) => {
                let shared = |kind| {
                    PgFailLock::new(pg.clone(), kind, lock_attempts, lock_window, lock_capacity)
                };
                (
                    Arc::new(AttemptLock::Postgres(shared(LockKind::User))),
                    Arc::new(AttemptLock::Postgres(shared(LockKind::Device))),
                    AddressLimits::Postgres(PgAddressGuard::new(pg.clone(), guard.settings())),
                )
            }
            Store::Sqlite(_) => (
                Arc::new(AttemptLock::Memory(FailLock::new(
                    lock_attempts,
                    lock_window,
                    lock_capacity,
                ))),
                Arc::new(AttemptLock::Memory(FailLock::new(
                    lock_attempts,
                    lock_window,
                    lock_capacity,
                ))),
                AddressLimits::Memory(guard),
            ),
        };
        let guard = Arc::new(guard);
        let accounts = crate::accounts::Accounts::new(
            crate::accounts::Deps {
                store: store.clone(),
                kdf: kdf.clone(),
                clock: clock.clone(),
                lock: lock.clone(),
                device_lock: device_lock.clone(),
                key: key.clone(),
                sessions: sessions.clone(),
                audit: audit.clone(),
            },
            guard.clone(),
        )
        .with_mail(mail.clone())
        .with_email_verification(email_verification)
        .with_reset(reset);
        web::Data::new(AppState {
            accounts,
            store,
            kdf,
            clock,
            lock,
            device_lock,
            guard,
            key,
            sessions,
            public_url,
            trusted_proxies,
            forward,
            body_timeout,
            audit,
            sign_up_open,
            audit_retention,
            mail,
            email_verification,
        })
    }
}
