//! The per-instance session cache (docs/design.md, "Session cache"): a page's session lookup
//! costs no round trip while nothing changed, and a change made anywhere is honoured here
//! within 100 ms (docs/behaviour.md §12).
//!
//! The database announces changes itself: triggers on `sessions`, `users` and `user_groups`
//! send `NOTIFY gatehouse_sessions` with the user ids concerned (`schema.sql`), so no write
//! path can forget. [`listen`] keeps one connection listening and asks it a trivial query
//! every [`HEARTBEAT`]; the cache is trusted only while that connection answered within
//! [`SILENCE`]. Otherwise every lookup goes to the database, and on reconnecting the cache
//! starts empty. The instance that makes a change also forgets the user at once
//! ([`SessionCache::forget_user`]) instead of waiting for its own notification.
//!
//! A lookup that misses reads the database and stores what it read only if no invalidation
//! arrived in between (a generation count), so a slow read cannot put back what a
//! notification just removed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::PgStore;
use super::connect::Tls;
use crate::store::SessionRecord;

/// The listener asks its connection `SELECT 1` this often.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// A listener silent this long is not trusted: lookups read the database.
pub const SILENCE: Duration = Duration::from_secs(1);
/// An entry is re-read after this long even without a notification, so "last seen" times
/// written by other instances (batched, never announced) are seen within it.
pub const ENTRY_TTL: Duration = Duration::from_secs(5);
/// Entries kept before the cache starts over (bounded memory whatever cookies clients send).
pub const CAPACITY: usize = 16_384;
/// Wait this long before reconnecting a listener that failed.
const RECONNECT: Duration = Duration::from_millis(200);
pub const CHANNEL: &str = "gatehouse_sessions";
/// The listener's `application_name` (the pool's connections say `gatehouse`).
pub const LISTENER_NAME: &str = "gatehouse listener";

pub struct SessionCache {
    state: Mutex<State>,
}

struct State {
    entries: HashMap<[u8; 32], Entry>,
    /// Moves on every invalidation; a miss records it and stores its result only if unchanged.
    generation: u64,
    /// Until when the listener's last heartbeat vouches for the cache.
    trusted_until: Option<Instant>,
    /// The latest use of each session this instance saw (session id → ms): a cached record's
    /// "last seen" is at least this, so a session kept alive here never looks idle here for
    /// want of a re-read. Not announced, so other instances see it once it is flushed and
    /// their entry is re-read (within [`ENTRY_TTL`]).
    seen: HashMap<i64, i64>,
}

struct Entry {
    record: Option<SessionRecord>,
    at: Instant,
}

/// What the cache says about a token hash.
pub enum Lookup {
    Hit(Option<SessionRecord>),
    /// Read the database, then [`SessionCache::put`] with this ticket.
    Miss(Option<u64>),
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionCache {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                entries: HashMap::new(),
                generation: 0,
                trusted_until: None,
                seen: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, token_hash: &[u8; 32], now: Instant) -> Lookup {
        let mut s = self.state();
        if !s.trusted(now) {
            if !s.entries.is_empty() {
                s.entries.clear();
                s.generation += 1;
            }
            return Lookup::Miss(None);
        }
        match s.entries.get(token_hash) {
            Some(e) if now.duration_since(e.at) < ENTRY_TTL => {
                Lookup::Hit(e.record.clone().map(|r| s.freshen(r)))
            }
            _ => Lookup::Miss(Some(s.generation)),
        }
    }

    /// Notes that session `id` was used at `at_ms` on this instance.
    pub fn touch(&self, id: i64, at_ms: i64) {
        let mut s = self.state();
        if s.seen.len() >= 4 * CAPACITY {
            s.seen.clear();
        }
        let t = s.seen.entry(id).or_insert(at_ms);
        *t = (*t).max(at_ms);
    }

    /// `record` with the latest use this instance saw.
    pub fn freshen(&self, record: SessionRecord) -> SessionRecord {
        self.state().freshen(record)
    }

    /// Keeps what a miss read, unless something was invalidated since (or the cache is not
    /// trusted: `ticket` is `None`).
    pub fn put(&self, token_hash: [u8; 32], record: Option<SessionRecord>, ticket: Option<u64>) {
        let now = Instant::now();
        let mut s = self.state();
        if ticket != Some(s.generation) || !s.trusted(now) {
            return;
        }
        if s.entries.len() >= CAPACITY {
            s.entries.clear();
        }
        s.entries.insert(token_hash, Entry { record, at: now });
    }

    /// Forgets every cached session of `user_id` (a change to the user or their sessions).
    pub fn forget_user(&self, user_id: i64) {
        self.forget_users(&[user_id]);
    }

    pub fn forget_users(&self, ids: &[i64]) {
        let mut s = self.state();
        s.generation += 1;
        s.entries
            .retain(|_, e| e.record.as_ref().is_none_or(|r| !ids.contains(&r.user.id)));
    }

    /// Forgets everything (a change whose users are not known, or too many to name).
    pub fn forget_all(&self) {
        let mut s = self.state();
        s.generation += 1;
        s.entries.clear();
    }

    /// Applies a notification's payload: user ids, comma-separated, or `*`.
    pub fn apply(&self, payload: &str) {
        let ids: Option<Vec<i64>> = payload
            .split(',')
            .map(|id| id.trim().parse().ok())
            .collect();
        match ids {
            Some(ids) if payload != "*" => self.forget_users(&ids),
            _ => self.forget_all(),
        }
    }

    /// The listener answered at `now`: trust the cache until `now + SILENCE`.
    pub fn heard(&self, now: Instant) {
        self.state().trusted_until = Some(now + SILENCE);
    }

    /// The listener is gone: distrust and empty the cache.
    pub fn distrust(&self) {
        let mut s = self.state();
        s.trusted_until = None;
        s.generation += 1;
        s.entries.clear();
    }

    pub fn is_trusted(&self) -> bool {
        self.state().trusted(Instant::now())
    }

    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|t| now < t)
    }

    fn freshen(&self, mut record: SessionRecord) -> SessionRecord {
        if let Some(&at) = self.seen.get(&record.id) {
            record.state.last_seen_ms = record.state.last_seen_ms.max(at);
        }
        record
    }
}

/// Keeps a connection listening on [`CHANNEL`] for as long as the store lives, reconnecting
/// after failures. Runs on the store's runtime.
pub async fn listen(store: PgStore) {
    let weak = std::sync::Arc::downgrade(&store.inner);
    drop(store);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let (mut config, tls) = (inner.config.clone(), inner.tls.clone());
        drop(inner);
        // Tells the listener apart from the pool's connections in `pg_stat_activity`.
        config.application_name(LISTENER_NAME);
        let outcome = match tls {
            Tls::None => listen_once(&weak, config.connect(tokio_postgres::NoTls).await).await,
            Tls::Rustls(make) => listen_once(&weak, config.connect(make).await).await,
        };
        let Some(inner) = weak.upgrade() else { return };
        inner.cache.distrust();
        drop(inner);
        if let Err(e) = outcome {
            tracing::warn!("session cache listener: {e}; lookups read the database meanwhile");
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn listen_once<S, T>(
    weak: &std::sync::Weak<super::Inner>,
    connected: Result<
        (tokio_postgres::Client, tokio_postgres::Connection<S, T>),
        tokio_postgres::Error,
    >,
) -> Result<(), tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, mut connection) = connected?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("session cache listener connection: {e}");
                    return;
                }
            }
        }
    });
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        // What was cached before this connection listened may be stale: start over.
        match weak.upgrade() {
            Some(inner) => {
                inner.cache.forget_all();
                inner.cache.heard(Instant::now());
            }
            None => return Ok(()),
        }
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                payload = rx.recv() => {
                    let Some(payload) = payload else { return Ok(()) };
                    let Some(inner) = weak.upgrade() else { return Ok(()) };
                    inner.cache.apply(&payload);
                }
                _ = beat.tick() => {
                    let asked = Instant::now();
                    match tokio::time::timeout(SILENCE, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {
                            let Some(inner) = weak.upgrade() else { return Ok(()) };
                            // Notifications sent before the answer were read before it.
                            while let Ok(payload) = rx.try_recv() {
                                inner.cache.apply(&payload);
                            }
                            inner.cache.heard(asked);
                        }
                        Ok(Err(e)) => return Err(e),
                        Err(_) => {
                            tracing::warn!("session cache listener silent; reconnecting");
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    .await;
    pump.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::session::SessionState;
    use crate::store::User;

    fn record(user_id: i64) -> SessionRecord {
        SessionRecord {
            id: user_id * 10,
            user: User {
                id: user_id,
                username: format!("user{user_id}"),
                email: None,
                full_name: None,
                created_ms: 0,
            },
            state: SessionState {
                created_ms: 0,
                last_seen_ms: 0,
                expires_ms: i64::MAX,
                user_active: true,
                password_changed_ms: 0,
            },
            groups: vec![],
            email_verified: false,
        }
    }

    fn ticket(c: &SessionCache, h: &[u8; 32]) -> Option<u64> {
        match c.get(h, Instant::now()) {
            Lookup::Miss(t) => t,
            Lookup::Hit(_) => panic!("expected a miss"),
        }
    }

    #[test]
    fn an_untrusted_cache_never_answers() {
        let c = SessionCache::new();
        let h = [1; 32];
        assert_eq!(ticket(&c, &h), None);
        c.put(h, Some(record(1)), None);
        assert!(c.is_empty());
        c.heard(Instant::now());
        let t = ticket(&c, &h);
        c.put(h, Some(record(1)), t);
        assert!(matches!(c.get(&h, Instant::now()), Lookup::Hit(Some(_))));
        // Silent past SILENCE: distrusted and emptied.
        assert!(matches!(
            c.get(&h, Instant::now() + SILENCE),
            Lookup::Miss(None)
        ));
        assert!(c.is_empty());
    }

    #[test]
    fn a_notification_forgets_the_users_named() {
        let c = SessionCache::new();
        c.heard(Instant::now());
        for u in 1..=3 {
            let h = [u as u8; 32];
            let t = ticket(&c, &h);
            c.put(h, Some(record(u)), t);
        }
        c.apply("1,3");
        assert!(matches!(c.get(&[1; 32], Instant::now()), Lookup::Miss(_)));
        assert!(matches!(
            c.get(&[2; 32], Instant::now()),
            Lookup::Hit(Some(_))
        ));
        assert!(matches!(c.get(&[3; 32], Instant::now()), Lookup::Miss(_)));
        c.apply("*");
        assert!(c.is_empty());
        c.put([2; 32], Some(record(2)), ticket(&c, &[2; 32]));
        c.apply("garbage");
        assert!(c.is_empty(), "an unreadable payload forgets everything");
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let c = SessionCache::new();
        c.heard(Instant::now());
        let h = [7; 32];
        let t = ticket(&c, &h);
        // The read is in flight when a notification arrives for someone else entirely.
        c.apply("99");
        c.put(h, Some(record(7)), t);
        assert!(c.is_empty());
    }

    #[test]
    fn a_use_seen_here_keeps_a_cached_session_fresh() {
        let c = SessionCache::new();
        c.heard(Instant::now());
        let h = [3; 32];
        let t = ticket(&c, &h);
        c.put(h, Some(record(3)), t);
        c.touch(30, 5_000);
        c.touch(30, 4_000);
        let Lookup::Hit(Some(r)) = c.get(&h, Instant::now()) else {
            panic!("expected a hit")
        };
        assert_eq!(
            r.state.last_seen_ms, 5_000,
            "the latest use, never an earlier one"
        );
        assert_eq!(
            c.freshen(record(4)).state.last_seen_ms,
            0,
            "other sessions untouched"
        );
    }

    #[test]
    fn entries_age_out() {
        let c = SessionCache::new();
        let now = Instant::now();
        c.heard(now + ENTRY_TTL);
        let h = [5; 32];
        let t = ticket(&c, &h);
        c.put(h, None, t);
        assert!(matches!(c.get(&h, Instant::now()), Lookup::Hit(None)));
        assert!(matches!(
            c.get(&h, now + ENTRY_TTL + Duration::from_millis(1)),
            Lookup::Miss(_)
        ));
    }
}
