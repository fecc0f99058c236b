//! The server's background work beside the requests: writing batched "last seen" times, and
//! purging expired sessions, stale lock and throttle records and old audit events. Started by
//! [`crate::Gatehouse::serve`] for `gatehouse serve` and for apps embedding Gatehouse alike.

use std::time::Duration;

use actix_web::web;

use crate::state::AppState;

/// Writes batched "last seen" times: often enough that a session's stored time lags its use by
/// well under the idle limit (touches happen at most every idle/4), rarely enough to be one
/// small transaction instead of a write per page view.
pub(crate) async fn flush_touches(state: web::Data<AppState>) {
    let every = Duration::from_millis(state.sessions.touch_interval_ms().clamp(50, 1_000) as u64);
    let mut tick = actix_web::rt::time::interval(every);
    loop {
        tick.tick().await;
        match state.store.flush_touches().await {
            Ok(_) => {}
            Err(e) => tracing::debug!("last-seen update deferred: {e}"),
        }
    }
}

/// Purges expired sessions and stale lock records, at most every minute and at least four
/// times per idle period.
pub(crate) async fn housekeeping(state: web::Data<AppState>) {
    let every = Duration::from_millis(state.sessions.touch_interval_ms().max(1_000) as u64);
    let mut tick = actix_web::rt::time::interval(every);
    loop {
        tick.tick().await;
        let now = state.clock.now();
        state.lock.sweep(now).await;
        state.device_lock.sweep(now).await;
        state.guard.sweep(now).await;
        let (ip_failures, ip_buckets) = state.guard.sizes().await;
        tracing::debug!(
            lock_records = state.lock.records().await,
            device_records = state.device_lock.records().await,
            ip_failures,
            ip_buckets,
            rss_kib = crate::metrics::rss_kib().unwrap_or(0),
            "abuse tables"
        );
        let idle_ms = state.sessions.idle.as_millis() as i64;
        let now = now.as_ms();
        purged(
            state.store.purge_expired_sessions(now, idle_ms).await,
            "expired sessions deleted",
            "session purge",
        );
        let ttl = crate::accounts::VERIFY_TTL.as_millis() as i64;
        if let Err(e) = state.store.lapse_pending_emails(now, ttl).await {
            tracing::warn!("lapsing pending email addresses failed: {e}");
        }
        purged(
            state.store.purge_expired_pending(now).await,
            "expired pending sign-ins deleted",
            "pending sign-in purge",
        );
        purged(
            state.store.purge_ceremonies(now).await,
            "expired passkey ceremonies deleted",
            "passkey ceremony purge",
        );
        let before = now.saturating_sub(state.audit_retention.as_millis() as i64);
        purged(
            state.store.purge_audit(before).await,
            "old audit events deleted",
            "audit purge",
        );
    }
}

/// Logs what one purge removed (debug), or why it failed (a warning: the next tick retries).
fn purged<E: std::fmt::Display>(result: Result<usize, E>, deleted: &str, what: &str) {
    match result {
        Ok(0) => {}
        Ok(n) => tracing::debug!(purged = n, "{deleted}"),
        Err(e) => tracing::warn!("{what} failed: {e}"),
    }
}
