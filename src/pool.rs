//! A fixed set of named OS threads fed by a bounded queue, for blocking work that must stay off
//! the async workers (SQLite calls). Unlike `web::block`, whose pool grows to hundreds of
//! threads under a burst (each with its own allocator arena), this one never grows; a full
//! queue is refused at once so the caller can answer 503 instead of queueing without bound.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("the work queue is full")]
    Full,
    #[error("the worker threads are gone")]
    Gone,
}

#[derive(Clone)]
pub struct ThreadPool {
    tx: SyncSender<Job>,
}

impl ThreadPool {
    pub fn new(name: &str, threads: usize, queue: usize) -> Self {
        Self::with_thread_start(name, threads, queue, || {})
    }

    /// Like [`ThreadPool::new`], running `start` first on each thread (e.g. to lower its
    /// priority).
    pub fn with_thread_start(name: &str, threads: usize, queue: usize, start: fn()) -> Self {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    start();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawn pool thread");
        }
        Self { tx }
    }

    /// Runs `f` on a pool thread and awaits its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Full,
            TrySendError::Disconnected(_) => PoolError::Gone,
        })?;
        result.await.map_err(|_| PoolError::Gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_refuses_when_full() {
        let pool = ThreadPool::new("test", 1, 1);
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
        // Block the only thread, fill the one queue slot, then the next is refused.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let p = pool.clone();
        let blocker = tokio::spawn(async move { p.run(move || wait.recv().ok()).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(|| 1).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(pool.run(|| 2).await, Err(PoolError::Full));
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_ok());
        assert_eq!(queued.await.unwrap(), Ok(1));
    }
}
