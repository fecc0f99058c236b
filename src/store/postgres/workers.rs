//! Connections owned by a server worker: a worker's statements are written and their replies
//! read on the worker's own thread, with no hop to the store's I/O runtime and back.
//!
//! Each server worker is a single-threaded runtime. With one shared pool, every statement a
//! request sends wakes the store's I/O thread to write it, and that thread wakes the worker
//! again with the reply: on two cores busy with Argon2, four wake-ups per statement, each one
//! preempting a KDF thread (docs/performance.md, "Connections on the worker's thread"). A
//! worker that has its own connections, driven by its own runtime, has two.
//!
//! The instance's `--db-pool-size` is split, never exceeded: each worker's share, and two or
//! more connections kept shared for the background tasks and any other thread. A worker whose
//! runtime has gone (a stopped server, a test's runtime) is noticed on the next call from its
//! thread, and its connections, whose I/O went with that runtime, are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;

use deadpool_postgres::Pool;
use tokio::runtime::{Handle, RuntimeFlavor};

/// Connections the split keeps shared: the audit writer, the "last seen" flush, the outbox and
/// housekeeping each take one at a time.
const KEPT_SHARED: usize = 2;

/// The fewest connections a worker owns: with one, a slow statement would hold up every other
/// request on that worker.
const LEAST_OWN: usize = 2;

/// How `size` connections are shared among `workers` server workers: (each worker's own, the
/// shared pool's). `None` when there are too few to give every worker [`LEAST_OWN`] and keep
/// [`KEPT_SHARED`]: then every caller uses the shared pool, as before the split.
pub(super) fn split(size: usize, workers: usize) -> Option<(usize, usize)> {
    if workers == 0 || size < workers * LEAST_OWN + KEPT_SHARED {
        return None;
    }
    let each = (size - KEPT_SHARED) / workers;
    Some((each, size - each * workers))
}

struct Owned {
    pool: Pool,
    /// Held by a task on the worker's runtime that never ends: gone once that runtime is.
    alive: Weak<()>,
}

impl Owned {
    fn alive(&self) -> bool {
        self.alive.strong_count() > 0
    }
}

/// The pools of the worker threads that adopted a store, by thread.
#[derive(Default)]
pub(super) struct WorkerPools {
    by_thread: Mutex<HashMap<ThreadId, Owned>>,
}

impl WorkerPools {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, Owned>> {
        self.by_thread.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calling thread's own pool, if it has one whose runtime still runs.
    pub(super) fn current(&self) -> Option<Pool> {
        let id = std::thread::current().id();
        let mut map = self.map();
        let owned = map.get(&id)?;
        if owned.alive() {
            return Some(owned.pool.clone());
        }
        map.remove(&id);
        None
    }

    /// Gives the calling thread a pool from `make` (handed the thread's runtime) when it runs
    /// a single-threaded runtime, has none yet, and fewer than `workers` threads hold one.
    pub(super) fn adopt(&self, workers: usize, make: impl FnOnce(Handle) -> Pool) {
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return;
        }
        let id = std::thread::current().id();
        let mut map = self.map();
        map.retain(|_, owned| owned.alive());
        if map.contains_key(&id) || map.len() >= workers {
            return;
        }
        let alive = Arc::new(());
        let owned = Owned {
            pool: make(handle.clone()),
            alive: Arc::downgrade(&alive),
        };
        handle.spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await
        });
        map.insert(id, owned);
    }

    /// Threads holding a pool whose runtime still runs.
    #[cfg(test)]
    pub(super) fn live(&self) -> usize {
        self.map().values().filter(|o| o.alive()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::{PgOptions, PgStore};
    use crate::store::testing::fresh_pg_database;

    fn single_threaded() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Connections the store's shared pool has opened.
    fn shared_size(store: &PgStore) -> usize {
        store.inner.pool.status().size
    }

    /// Adopts the calling thread as the only worker and runs a statement, which must open the
    /// worker's own connection.
    async fn adopt_and_use_own_connection(store: &PgStore) {
        store.adopt_worker();
        assert_eq!(store.inner.workers.live(), 1);
        assert!(store.healthy().await);
        let own = store
            .inner
            .workers
            .current()
            .expect("the worker's own pool");
        assert_eq!(
            own.status().size,
            1,
            "the statement ran on the worker's connection"
        );
    }

    #[test]
    fn a_worker_uses_its_own_share_until_its_runtime_goes() {
        let options = PgOptions {
            pool_size: 4,
            workers: 1,
            ..PgOptions::default()
        };
        let store = PgStore::open(&fresh_pg_database(), &options).unwrap();
        let shared = shared_size(&store);

        let worker = single_threaded();
        worker.block_on(async {
            adopt_and_use_own_connection(&store).await;
            assert_eq!(shared_size(&store), shared, "and not a shared one");
            // Adopting again changes nothing.
            store.adopt_worker();
            assert_eq!(store.inner.workers.live(), 1);
        });

        // Every share is taken: a second worker uses the shared pool.
        std::thread::scope(|s| {
            s.spawn(|| {
                single_threaded().block_on(async {
                    store.adopt_worker();
                    assert!(store.inner.workers.current().is_none());
                    assert!(store.healthy().await);
                })
            });
        });
        // So does a thread of a multi-threaded runtime.
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        multi.block_on(async {
            let store = store.clone();
            tokio::spawn(async move {
                store.adopt_worker();
                assert!(store.inner.workers.current().is_none());
            })
            .await
            .unwrap();
        });

        // The worker's runtime goes, with its connections' I/O: its pool is dropped, not used.
        drop(worker);
        assert_eq!(store.inner.workers.live(), 0);
        let next = single_threaded();
        next.block_on(async {
            assert!(store.inner.workers.current().is_none());
            assert!(store.healthy().await, "the shared pool answers meanwhile");
            // A new worker on the same thread gets the freed share.
            adopt_and_use_own_connection(&store).await;
        });
    }

    #[test]
    fn without_workers_or_with_too_small_a_pool_nothing_is_split() {
        for (pool_size, workers) in [(16, 0), (5, 2)] {
            let options = PgOptions {
                pool_size,
                workers,
                ..PgOptions::default()
            };
            let store = PgStore::open(&fresh_pg_database(), &options).unwrap();
            single_threaded().block_on(async {
                store.adopt_worker();
                assert!(store.inner.workers.current().is_none());
                assert!(store.healthy().await);
            });
            assert_eq!(store.inner.pool.status().max_size, pool_size);
        }
    }

    #[test]
    fn the_split_never_exceeds_the_pool() {
        for size in 1..=64 {
            for workers in 0..=8 {
                match split(size, workers) {
                    Some((each, shared)) => {
                        assert!(each >= LEAST_OWN, "{size}/{workers}");
                        assert!(shared >= KEPT_SHARED, "{size}/{workers}");
                        assert_eq!(each * workers + shared, size, "{size}/{workers}");
                    }
                    None => assert!(workers == 0 || size < workers * LEAST_OWN + KEPT_SHARED),
                }
            }
        }
        assert_eq!(split(16, 2), Some((7, 2)));
        assert_eq!(split(16, 7), Some((2, 2)));
        assert_eq!(split(16, 8), None);
        assert_eq!(split(6, 2), Some((2, 2)));
        assert_eq!(split(5, 2), None);
        assert_eq!(split(16, 0), None);
    }
}
