//! The audit trail: who signed up, signed in (or failed, or was locked out or throttled),
//! signed out, changed a password, revoked a session, and every admin command.
//!
//! Handlers hand events to [`AuditLog::record`], which never blocks: a dedicated thread writes
//! them in batches (one transaction each). Locked and throttled attempts are aggregated per
//! episode — one row per username (locked) or address (throttled) whose `count` and `last_at`
//! grow while attempts keep coming within [`AuditLog::new`]'s gap — so an attacker hammering a
//! locked name writes one row, not millions. Everything else is one row per event, and those
//! events each cost a KDF run or a session, so their rate is bounded already.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use crate::store::{AuditEvent, Store};

/// Events waiting for the writer; beyond this they are dropped (and counted) rather than
/// slowing requests down. The channel allocates every slot up front, which is why events travel
/// boxed: 16 384 slots cost a few hundred KiB, where unboxed events cost 11 MiB of resident
/// memory at start-up.
const QUEUE: usize = 16_384;
const BATCH: usize = 4096;
/// How long the writer lets events gather before it writes them.
const GATHER: Duration = Duration::from_millis(100);

/// Builds an event; `kind` and `outcome` are fixed names (see docs/operations.md).
pub fn event(kind: &'static str, outcome: &'static str) -> AuditEvent {
    event_at(kind, outcome, crate::clock::now_ms())
}

/// Builds an event that happened at `now` (Unix milliseconds, from the caller's clock).
pub fn event_at(kind: &'static str, outcome: &'static str, now: i64) -> AuditEvent {
    AuditEvent {
        at_ms: now,
        last_ms: now,
        count: 1,
        event: kind,
        outcome,
        username: None,
        user_id: None,
        ip: None,
        user_agent: None,
        detail: None,
    }
}

/// Builder methods over the store's event type.
pub trait EventExt: Sized {
    fn user(self, username: Option<&str>, user_id: Option<i64>) -> Self;
    /// Who acted: their address and browser, as logged.
    fn client(self, ip: Option<&str>, user_agent: Option<&str>) -> Self;
    fn detail(self, detail: impl Into<String>) -> Self;
}

impl EventExt for AuditEvent {
    fn user(mut self, username: Option<&str>, user_id: Option<i64>) -> Self {
        self.username = username.map(str::to_owned);
        self.user_id = user_id;
        self
    }

    fn client(mut self, ip: Option<&str>, user_agent: Option<&str>) -> Self {
        self.ip = ip.map(str::to_owned);
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// The episode an aggregated event belongs to: locked attempts by username, throttled ones by
/// address (an address rotating usernames is still one episode).
fn episode_key(e: &AuditEvent) -> Option<(&'static str, &'static str, String)> {
    let who = match e.outcome {
        "locked" => e.username.clone().or_else(|| e.ip.clone()),
        "throttled" => e.ip.clone(),
        _ => return None,
    }?;
    Some((e.event, e.outcome, who))
}

enum Msg {
    Event(Box<AuditEvent>),
    Flush(SyncSender<()>),
}

/// The server's audit writer.
pub struct AuditLog {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl AuditLog {
    /// Starts the writer. Attempts less than `gap` apart belong to one episode.
    pub fn new(store: Store, gap: Duration) -> Self {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        // Detached: it ends when the last sender drops; shutdown calls `flush` first.
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || Writer::new(store, gap).run(rx))
            .expect("spawn the audit writer thread");
        Self {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts an event in the metrics that was written to the trail some other way.
    pub fn count(&self, kind: &'static str, outcome: &'static str) {
        crate::metrics::event(kind, outcome);
    }

    /// Queues an event (and counts it in the metrics); never blocks.
    pub fn record(&self, e: AuditEvent) {
        crate::metrics::event(e.event, e.outcome);
        match self.tx.try_send(Msg::Event(Box::new(e))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self
                    .dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(10_000)
                {
                    tracing::warn!("audit queue full: events are being dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits until everything queued so far is written (tests, shutdown).
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(10));
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// An open episode: its row (once written) and what is not yet added to it.
struct Episode {
    row: Option<i64>,
    last_ms: i64,
    pending: i64,
}

struct Writer {
    store: Store,
    /// Drives the async storage calls on this thread, which is the writer's own.
    runtime: tokio::runtime::Runtime,
    gap_ms: i64,
    episodes: HashMap<(&'static str, &'static str, String), Episode>,
}

impl Writer {
    fn new(store: Store, gap: Duration) -> Self {
        Self {
            store,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime for the audit writer"),
            gap_ms: gap.as_millis().min(i64::MAX as u128) as i64,
            episodes: HashMap::new(),
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let first = match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.forget_closed(crate::clock::now_ms());
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // A locked or throttled attempt comes in floods: let a batch gather before
            // draining. While this thread sleeps (rather than waits on the channel) a sender
            // needs no wake-up, so the flood costs the requests no context switch each, and the
            // disk one transaction per interval. Other events (each behind a KDF run) are
            // written at once, so `/account` shows a failed attempt right after it.
            if matches!(&first, Msg::Event(e) if episode_key(e).is_some()) {
                std::thread::sleep(GATHER);
            }
            let mut acks = Vec::new();
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Msg::Event(e) => batch.push(*e),
                    Msg::Flush(ack) => acks.push(ack),
                }
                if batch.len() >= BATCH {
                    self.write_logged(std::mem::take(&mut batch));
                }
                next = rx.try_recv().ok();
            }
            self.write_logged(std::mem::take(&mut batch));
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    fn write_logged(&mut self, batch: Vec<AuditEvent>) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.write(batch) {
            tracing::warn!("audit events lost: {e}");
        }
    }

    /// Turns a batch into inserts and episode bumps, and writes them in one transaction.
    fn write(&mut self, batch: Vec<AuditEvent>) -> crate::store::Result<()> {
        let mut inserts: Vec<AuditEvent> = Vec::new();
        // Episodes opened in this batch: key → index in `inserts`.
        let mut opened: HashMap<(&'static str, &'static str, String), usize> = HashMap::new();
        for e in batch {
            let Some(key) = episode_key(&e) else {
                inserts.push(e);
                continue;
            };
            if let Some(&i) = opened.get(&key) {
                let row = &mut inserts[i];
                row.count += 1;
                row.last_ms = row.last_ms.max(e.at_ms);
                continue;
            }
            match self.episodes.get_mut(&key) {
                Some(ep) if e.at_ms - ep.last_ms < self.gap_ms && ep.row.is_some() => {
                    ep.pending += 1;
                    ep.last_ms = ep.last_ms.max(e.at_ms);
                }
                _ => {
                    opened.insert(key, inserts.len());
                    inserts.push(e);
                }
            }
        }
        let bumps: Vec<(i64, i64, i64)> = self
            .episodes
            .values()
            .filter(|ep| ep.pending > 0)
            .filter_map(|ep| ep.row.map(|row| (row, ep.pending, ep.last_ms)))
            .collect();
        let ids = self
            .runtime
            .block_on(self.store.write_audit(&inserts, &bumps))?;
        for ep in self.episodes.values_mut() {
            ep.pending = 0;
        }
        for (key, i) in opened {
            self.episodes.insert(
                key,
                Episode {
                    row: Some(ids[i]),
                    last_ms: inserts[i].last_ms,
                    pending: 0,
                },
            );
        }
        self.forget_closed(crate::clock::now_ms());
        Ok(())
    }

    /// Drops episodes that ended (bounded memory: each is one row already written).
    fn forget_closed(&mut self, now_ms: i64) {
        let gap = self.gap_ms;
        self.episodes
            .retain(|_, ep| ep.pending > 0 || now_ms - ep.last_ms < gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditFilter;

    fn rows(store: &Store) -> Vec<crate::store::AuditRow> {
        let filter = AuditFilter {
            limit: 1000,
            ..Default::default()
        };
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.audit_events(&filter))
            .unwrap()
    }

    #[test]
    fn locked_and_throttled_attempts_are_one_row_per_episode() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let log = AuditLog::new(store.clone(), Duration::from_secs(600));
        for i in 0..5_000 {
            log.record(event("sign_in", "locked").user(Some("alice"), Some(1)));
            // An address rotating usernames is one throttled episode.
            let mut t = event("sign_in", "throttled").user(Some(&format!("u{i}")), None);
            t.ip = Some("10.0.0.1".into());
            log.record(t);
            if i % 1000 == 0 {
                log.flush();
            }
        }
        log.record(event("sign_in", "failed").user(Some("alice"), Some(1)));
        log.record(event("sign_in", "failed").user(Some("alice"), Some(1)));
        log.flush();
        let all = rows(&store);
        let locked: Vec<_> = all.iter().filter(|r| r.outcome == "locked").collect();
        let throttled: Vec<_> = all.iter().filter(|r| r.outcome == "throttled").collect();
        assert_eq!(locked.len(), 1, "{all:?}");
        assert_eq!(locked[0].count, 5_000);
        assert_eq!(throttled.len(), 1);
        assert_eq!(throttled[0].count, 5_000);
        assert_eq!(all.iter().filter(|r| r.outcome == "failed").count(), 2);
    }

    #[test]
    fn a_new_episode_starts_after_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let log = AuditLog::new(store.clone(), Duration::from_millis(1));
        log.record(event("sign_in", "locked").user(Some("bob"), Some(2)));
        log.flush();
        std::thread::sleep(Duration::from_millis(20));
        log.record(event("sign_in", "locked").user(Some("bob"), Some(2)));
        log.flush();
        assert_eq!(rows(&store).len(), 2);
    }
}
