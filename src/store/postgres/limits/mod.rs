//! The fail-lock, the address throttle and the KDF budget shared through PostgreSQL (docs/behaviour.md
//! §4 and §12): the rules of [`crate::security::faillock`] and [`crate::security::throttle`],
//! each decision one atomic statement, so N parallel attempts on any number of instances count
//! as N. Reached only through [`crate::security::limits`] (`AttemptLock::Postgres`,
//! `AddressLimits::Postgres`). docs/design.md, "Shared lock and throttle", has the reasoning.
//!
//! Every time is the caller's wall clock in ms. "Live" is `now − last < window` with the
//! difference saturating at zero, written `last > now − window` (`cut` below), so a clock that
//! steps back reads stored times as fresh and stored times never move backwards (`GREATEST`).
//! The bound is the row count kept by triggers (`fail_lock_rows`, `address_rows`), read in the
//! statement that would add a row: a new key is refused when the table holds `capacity` rows
//! and expired rows are swept first, as in memory. Several instances adding new keys at once
//! each read the count before the others' rows are committed, so the table can exceed its
//! bound by the number of such concurrent inserts (at most one per pooled connection); a live
//! row is never deleted to make room.

use std::time::Duration;

use super::{Client, PgStore};
use crate::clock::Timestamp;
use crate::security::limits::LimitsError;
use crate::store::StoreError;

mod address;
mod lock;

pub use address::PgAddressGuard;
pub use lock::{LockKind, PgFailLock};

/// Any database error: the decision cannot be made (through [`StoreError`], for the server's
/// own message).
fn unavailable(e: impl Into<StoreError>) -> LimitsError {
    LimitsError::Unavailable(e.into().to_string())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Records with a last time after this are live at `now`. A zero window keeps nothing live.
fn cut(now: Timestamp, window: Duration) -> i64 {
    if window.is_zero() {
        i64::MAX
    } else {
        now.as_ms().saturating_sub(millis(window))
    }
}

/// The failure counts are `INTEGER`; attempts beyond that could never lock anyway.
fn clamp_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn clamp_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgStore {
    async fn limits_client(&self) -> Result<Client, LimitsError> {
        self.client().await.map_err(unavailable)
    }
}
