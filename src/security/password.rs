//! The password KDF: Argon2id over the 64 digest bytes, stored as a PHC string (docs/behaviour.md
//! §2), and the bounded thread pool it runs on, so hashing never blocks the async workers.
//!
//! Every verification does at least the work of the *current* parameters, whatever the stored
//! hash's: a hash made with older, cheaper parameters is topped up with a padding run, so a
//! dormant account does not answer a wrong password faster than an unknown name does (the
//! dummy hash) after a cost upgrade. Work is counted in Argon2 block compressions (blocks ×
//! passes), which is what Argon2's time is proportional to. See `docs/design.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand_core::OsRng;

use crate::pool::{PoolError, ThreadPool};
use crate::security::digest::PasswordDigest;

/// Argon2id cost parameters. The defaults are OWASP's: m = 19 MiB, t = 2, p = 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_kib: 19_456,
            t: 2,
            p: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KdfError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("stored password hash is not a valid Argon2id PHC string")]
    BadHash,
    #[error("the password hashing queue is full")]
    QueueFull,
    #[error("the password hashing pool has stopped")]
    PoolGone,
}

/// Hashes and verifies digests with one fixed set of parameters.
#[derive(Clone)]
pub struct Kdf {
    params: KdfParams,
    argon: Argon2<'static>,
    /// A hash of a random digest, verified against when the user does not exist so that an
    /// unknown username costs the same KDF work as a wrong password.
    dummy_hash: Arc<str>,
    /// The current parameters' work: the least any verification does.
    work: u64,
}

/// Argon2 work of a parameter set: block compressions, blocks × passes (lanes run one after
/// another here: the crate is built without its `parallel` feature).
fn work(p: &Params) -> u64 {
    p.block_count() as u64 * u64::from(p.t_cost())
}

/// Parameters whose work is at least `deficit` (and at most a few blocks more), using no more
/// memory than `max_blocks` (the current parameters' buffer), so padding never grows a KDF
/// thread's footprint. `None` when there is nothing to pad.
fn padding_params(deficit: u64, max_blocks: usize) -> Option<Params> {
    if deficit == 0 {
        return None;
    }
    let max_blocks = (max_blocks as u64).max(u64::from(Params::MIN_M_COST));
    let t = deficit.div_ceil(max_blocks);
    // Whole segments: a multiple of 4 blocks (one lane, four slices), at least the minimum.
    let m = deficit
        .div_ceil(t)
        .next_multiple_of(4)
        .max(u64::from(Params::MIN_M_COST));
    Params::new(
        u32::try_from(m).ok()?,
        u32::try_from(t).ok()?,
        1,
        Some(Params::DEFAULT_OUTPUT_LEN),
    )
    .ok()
}

impl Kdf {
    pub fn new(params: KdfParams) -> Result<Self, KdfError> {
        let p = Params::new(
            params.m_kib,
            params.t,
            params.p,
            Some(Params::DEFAULT_OUTPUT_LEN),
        )
        .map_err(|e| KdfError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut kdf = Self {
            params,
            work: work(argon.params()),
            argon,
            dummy_hash: Arc::from(""),
        };
        let mut random = [0u8; 64];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
        let dummy = PasswordDigest::compute(&hex::encode(random), "dummy");
        kdf.dummy_hash = Arc::from(kdf.hash(&dummy)?);
        // The start-up thread hashes once; it need not keep the working memory.
        BLOCKS.with_borrow_mut(|b| *b = Vec::new());
        Ok(kdf)
    }

    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// A fresh PHC string with a new 16-byte random salt.
    pub fn hash(&self, digest: &PasswordDigest) -> Result<String, KdfError> {
        let bad = |e: argon2::password_hash::Error| KdfError::Params(e.to_string());
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).map_err(bad)?;
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            argon2_into(&self.argon, digest.as_bytes(), salt_bytes, out)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(bad)?;
        Ok(PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon.params()).map_err(bad)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string())
    }

    /// Verifies with the parameters recorded in `phc`, not the current ones, so old hashes
    /// keep working after a parameter change. The comparison is constant-time (`Output`'s
    /// equality). Costs at least the current parameters' work whatever `phc` holds (cheaper
    /// parameters, or an unreadable string): the rest is done as padding.
    pub fn verify(&self, digest: &PasswordDigest, phc: &str) -> Result<bool, KdfError> {
        let (result, done) = match self.verify_as_stored(digest, phc) {
            Ok((matched, done)) => (Ok(matched), done),
            Err(e) => (Err(e), 0),
        };
        self.pad(digest, self.work.saturating_sub(done));
        result
    }

    /// Argon2 work that produces nothing, `deficit` blocks of it (rounded up a little).
    fn pad(&self, digest: &PasswordDigest, deficit: u64) {
        let Some(params) = padding_params(deficit, self.argon.params().block_count()) else {
            return;
        };
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        // The salt is fixed: the output is thrown away, only the time counts.
        let _ = argon2_into(&argon, digest.as_bytes(), b"gatehouse-padding", &mut out);
        std::hint::black_box(&out);
    }

    /// The verification itself and the work it did.
    fn verify_as_stored(
        &self,
        digest: &PasswordDigest,
        phc: &str,
    ) -> Result<(bool, u64), KdfError> {
        let parsed = PasswordHash::new(phc).map_err(|_| KdfError::BadHash)?;
        if parsed.algorithm != argon2::ARGON2ID_IDENT
            || parsed
                .version
                .is_some_and(|v| v != u32::from(Version::V0x13))
        {
            return Err(KdfError::BadHash);
        }
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(KdfError::BadHash);
        };
        let params = Params::try_from(&parsed).map_err(|_| KdfError::BadHash)?;
        let done = work(&params);
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_buf)
            .map_err(|_| KdfError::BadHash)?;
        let computed = Output::init_with(expected.len(), |out| {
            argon2_into(&argon, digest.as_bytes(), salt_bytes, out)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|_| KdfError::BadHash)?;
        Ok((computed == expected, done))
    }

    /// Runs a verify against the dummy hash: same work as a real one, always false.
    pub fn verify_dummy(&self, digest: &PasswordDigest) {
        let _ = self.verify(digest, &self.dummy_hash);
    }

    /// True when `phc` was made with other parameters (or is unreadable) and so should be
    /// replaced after the next successful verification.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match parse_params(phc) {
            Some(p) => p != self.params,
            None => true,
        }
    }
}

thread_local! {
    /// This thread's Argon2 working memory (m KiB), reused from one hash to the next: no
    /// 19 MiB allocation and its page faults per sign-in, and a KDF thread's footprint stays
    /// one buffer however many sign-ins it serves.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

#[cfg(test)]
thread_local! {
    /// The parameters of every Argon2 run on this thread, for tests of how much work a check
    /// does (structural, not by the clock).
    static RUNS: RefCell<Vec<KdfParams>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 over `pwd` and `salt` into `out`, in this thread's reusable memory.
fn argon2_into(
    argon: &Argon2<'_>,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    #[cfg(test)]
    RUNS.with_borrow_mut(|runs| {
        let p = argon.params();
        runs.push(KdfParams {
            m_kib: p.m_cost(),
            t: p.t_cost(),
            p: p.p_cost(),
        });
    });
    BLOCKS.with_borrow_mut(|blocks| {
        let need = argon.params().block_count();
        if blocks.len() < need {
            *blocks = huge_page_blocks(need);
        }
        argon.hash_password_into_with_memory(pwd, salt, out, &mut blocks[..need])
    })
}

/// `n` zeroed Argon2 blocks, asking the kernel for transparent huge pages before they are
/// first touched: Argon2 reads its memory at random, and 19 MiB in 4 KiB pages is far more
/// pages than the TLB holds.
fn huge_page_blocks(n: usize) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = blocks.as_mut_ptr() as usize;
        let end = start + n * std::mem::size_of::<Block>();
        let (from, to) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if to > from {
            // SAFETY: the range lies inside the allocation just made, page-aligned; the advice
            // changes how its pages are backed, never their contents.
            unsafe {
                libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            }
        }
    }
    blocks.resize(n, Block::new());
    blocks
}

/// Reads `m`, `t`, `p` from an Argon2id PHC string.
pub fn parse_params(phc: &str) -> Option<KdfParams> {
    let parsed = PasswordHash::new(phc).ok()?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.version != Some(0x13) {
        return None;
    }
    let p = Params::try_from(&parsed).ok()?;
    Some(KdfParams {
        m_kib: p.m_cost(),
        t: p.t_cost(),
        p: p.p_cost(),
    })
}

/// Runs the calling thread at a lower CPU priority (nice +10 relative to the process, at most
/// 19), so that while a sign-in flood keeps the KDF busy, the HTTP workers still get a core
/// first: pages stay fast and sign-ins only queue. Relative, so a server started under `nice`
/// (or systemd's `Nice=`) keeps the gap. Best effort: without permission the thread keeps its
/// priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the current thread's id; no memory is passed. A new thread
        // starts with its creator's nice value, which getpriority reads back.
        let ok = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, (current + 10).min(19)) == 0
        };
        if !ok {
            tracing::debug!("could not lower the KDF thread's priority");
        }
    }
}

/// The KDF's own threads (at lower priority) with a bounded queue: a full queue is refused at
/// once (503) instead of letting latency grow without bound.
#[derive(Clone)]
pub struct KdfPool {
    pool: ThreadPool,
    kdf: Kdf,
    /// Jobs accepted but not yet started: > 0 means the pool is contended.
    waiting: Arc<AtomicUsize>,
    /// Told how long each job waited for a thread (the caller's metrics); the rules here know
    /// nothing of where the number goes.
    on_wait: Option<WaitObserver>,
}

/// Receives the time a KDF job waited between submission and starting on a thread.
pub type WaitObserver = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

impl KdfPool {
    pub fn new(kdf: Kdf, threads: usize, queue: usize) -> Self {
        Self {
            pool: ThreadPool::with_thread_start("kdf", threads, queue, lower_priority),
            kdf,
            waiting: Arc::new(AtomicUsize::new(0)),
            on_wait: None,
        }
    }

    /// Reports every job's wait for a thread to `observe` (run on the KDF thread, so it must be
    /// cheap).
    pub fn with_wait_observer(
        mut self,
        observe: impl Fn(std::time::Duration) + Send + Sync + 'static,
    ) -> Self {
        self.on_wait = Some(Arc::new(observe));
        self
    }

    /// Jobs waiting for a thread right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn kdf(&self) -> &Kdf {
        &self.kdf
    }

    /// Runs `f` with the KDF on the pool and awaits its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, KdfError>
    where
        T: Send + 'static,
        F: FnOnce(&Kdf) -> T + Send + 'static,
    {
        let kdf = self.kdf.clone();
        let waiting = Arc::clone(&self.waiting);
        let on_wait = self.on_wait.clone();
        let submitted = std::time::Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let result = self
            .pool
            .run(move || {
                waiting.fetch_sub(1, Ordering::Relaxed);
                if let Some(observe) = on_wait {
                    observe(submitted.elapsed());
                }
                f(&kdf)
            })
            .await;
        if matches!(result, Err(PoolError::Full)) {
            // Never started: it is not waiting any more.
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        result.map_err(|e| match e {
            PoolError::Full => KdfError::QueueFull,
            PoolError::Gone => KdfError::PoolGone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Kdf {
        Kdf::new(KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        })
        .unwrap()
    }

    #[test]
    fn working_memory_is_the_blocks_asked_for_all_zero() {
        for n in [1, 8, 19 * 1024 + 3] {
            let blocks = huge_page_blocks(n);
            assert_eq!(blocks.len(), n);
            assert!(
                blocks
                    .iter()
                    .all(|b| b.as_ref().iter().all(|&word| word == 0))
            );
        }
    }

    #[test]
    fn hashes_interoperate_with_the_argon2_crates_own_hasher() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let kdf = tiny();
        let right = PasswordDigest::compute("alice", "correct horse battery staple");
        let wrong = PasswordDigest::compute("alice", "wrong horse battery staple");
        // Made by the crate (as earlier Gatehouse versions stored them), checked by ours.
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let theirs = argon
            .hash_password(right.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(kdf.verify(&right, &theirs).unwrap());
        assert!(!kdf.verify(&wrong, &theirs).unwrap());
        // Made by ours, checked by the crate.
        let ours = kdf.hash(&right).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon.verify_password(right.as_bytes(), &parsed).is_ok());
        assert!(argon.verify_password(wrong.as_bytes(), &parsed).is_err());
        // A flipped output byte fails; a bigger memory cost than the buffer holds still works.
        let mut tampered = ours.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!kdf.verify(&right, &tampered).unwrap_or(false));
        let bigger = Kdf::new(KdfParams {
            m_kib: 256,
            t: 1,
            p: 1,
        })
        .unwrap();
        assert!(kdf.verify(&right, &bigger.hash(&right).unwrap()).unwrap());
        assert!(
            !kdf.verify(&right, "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA")
                .unwrap_or(false)
        );
    }

    #[test]
    fn hash_verifies_and_salts_differ() {
        let kdf = tiny();
        let d = PasswordDigest::compute("alice", "correct horse battery staple");
        let h1 = kdf.hash(&d).unwrap();
        let h2 = kdf.hash(&d).unwrap();
        assert_ne!(h1, h2, "fresh salt per hash");
        assert!(h1.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(kdf.verify(&d, &h1).unwrap());
        let wrong = PasswordDigest::compute("alice", "correct horse battery stapl");
        assert!(!kdf.verify(&wrong, &h1).unwrap());
        // the salt is 16 bytes: 22 unpadded base64 characters
        let salt = h1.split('$').nth(4).unwrap();
        assert_eq!(salt.len(), 22);
    }

    #[test]
    fn default_params_are_owasp() {
        assert_eq!(
            KdfParams::default(),
            KdfParams {
                m_kib: 19456,
                t: 2,
                p: 1
            }
        );
    }

    #[test]
    fn rehash_when_params_differ() {
        let old = tiny();
        let new = Kdf::new(KdfParams {
            m_kib: 128,
            t: 1,
            p: 1,
        })
        .unwrap();
        let d = PasswordDigest::compute("bob", "hunter2hunter2");
        let h = old.hash(&d).unwrap();
        assert!(!old.needs_rehash(&h));
        assert!(new.needs_rehash(&h));
        assert!(new.verify(&d, &h).unwrap(), "old parameters still verify");
        assert_eq!(
            parse_params(&h),
            Some(KdfParams {
                m_kib: 64,
                t: 1,
                p: 1
            })
        );
    }

    #[test]
    fn garbage_phc_is_an_error_not_a_panic() {
        let kdf = tiny();
        let d = PasswordDigest::compute("bob", "hunter2hunter2");
        for bad in [
            "",
            "$",
            "$1$abc$",
            "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$!!$!!",
            "plain text",
        ] {
            assert!(kdf.verify(&d, bad).is_err(), "{bad}");
            assert!(kdf.needs_rehash(bad));
            assert_eq!(parse_params(bad), None);
        }
        // An Argon2id hash of the old version 0x10 verifies (as false here) but is upgraded.
        let v16 = "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!kdf.verify(&d, v16).unwrap_or(false));
        assert!(kdf.needs_rehash(v16));
    }

    /// The Argon2 runs `f` makes on this thread, and their total work.
    fn runs_of(f: impl FnOnce()) -> (Vec<KdfParams>, u64) {
        RUNS.with_borrow_mut(Vec::clear);
        f();
        let runs = RUNS.with_borrow_mut(std::mem::take);
        let total = runs
            .iter()
            .map(|k| work(&Params::new(k.m_kib, k.t, k.p, None).unwrap()))
            .sum();
        (runs, total)
    }

    fn kdf(m_kib: u32, t: u32, p: u32) -> Kdf {
        Kdf::new(KdfParams { m_kib, t, p }).unwrap()
    }

    #[test]
    fn a_wrong_password_costs_the_current_work_whatever_the_stored_parameters() {
        let current = kdf(1024, 2, 1);
        let full = work(current.argon.params());
        assert_eq!(full, 2048);
        let right = PasswordDigest::compute("dora", "dormant-password");
        let wrong = PasswordDigest::compute("dora", "a wrong guess");
        let cheap = kdf(64, 1, 1).hash(&right).unwrap();
        let current_hash = current.hash(&right).unwrap();

        // Unknown user (the dummy) and a user with the current parameters: one current run.
        let (runs, w) = runs_of(|| current.verify_dummy(&wrong));
        assert_eq!((runs, w), (vec![current.params()], full));
        let (runs, w) = runs_of(|| assert!(!current.verify(&wrong, &current_hash).unwrap()));
        assert_eq!((runs, w), (vec![current.params()], full));

        // Older, cheaper parameters: the stored run, then padding up to the current work.
        for stored in [
            cheap.clone(),
            kdf(256, 3, 1).hash(&right).unwrap(),
            kdf(64, 1, 2).hash(&right).unwrap(),
        ] {
            let (runs, w) = runs_of(|| assert!(!current.verify(&wrong, &stored).unwrap()));
            assert_eq!(runs.len(), 2, "{stored}: {runs:?}");
            assert_eq!(Some(runs[0]), parse_params(&stored));
            assert!(
                (full..full + 8).contains(&w),
                "{stored}: work {w}, want {full}"
            );
            assert!(
                runs[1].m_kib <= 1024,
                "padding never needs more memory than now"
            );
        }
        // The right password costs the same (and still verifies).
        let (_, w) = runs_of(|| assert!(current.verify(&right, &cheap).unwrap()));
        assert!((full..full + 8).contains(&w));
        // An unreadable stored hash is an error after the same work, not a fast answer.
        let (_, w) = runs_of(|| assert!(current.verify(&wrong, "garbage").is_err()));
        assert_eq!(w, full);

        // Costlier old parameters are not cut short (they cannot be): the stored work, no
        // padding. docs/design.md says why this direction is accepted.
        let costly = kdf(2048, 2, 1).hash(&right).unwrap();
        let (runs, w) = runs_of(|| assert!(!current.verify(&wrong, &costly).unwrap()));
        assert_eq!((runs.len(), w), (1, 4096));
    }

    #[test]
    fn padding_matches_the_deficit_within_the_current_memory() {
        assert!(padding_params(0, 19_456).is_none());
        for (deficit, max_blocks) in [
            (1u64, 19_456usize),
            (7, 64),
            (34_816, 19_456),
            (38_912 - 64, 19_456),
            (1_000_003, 19_456),
            (100, 8),
        ] {
            let p = padding_params(deficit, max_blocks).unwrap();
            let w = work(&p);
            assert!(w >= deficit, "{deficit}: {w}");
            assert!(
                w < deficit + 8 * u64::from(p.t_cost()),
                "{deficit}: {w} ({p:?})"
            );
            assert!(p.block_count() <= max_blocks.max(8), "{deficit}: {p:?}");
        }
    }

    #[test]
    fn dummy_never_verifies() {
        let kdf = tiny();
        kdf.verify_dummy(&PasswordDigest::compute("x", "dummy"));
    }

    #[tokio::test]
    async fn the_wait_observer_hears_every_job() {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let pool = KdfPool::new(tiny(), 1, 4).with_wait_observer(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        pool.run(|_| ()).await.unwrap();
        pool.run(|_| ()).await.unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 2);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn kdf_threads_run_at_a_lower_priority() {
        fn nice() -> i32 {
            // SAFETY: plain syscalls on the current thread.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            }
        }
        let pool = KdfPool::new(tiny(), 1, 4);
        let here = nice();
        let there = pool.run(|_| nice()).await.unwrap();
        assert_eq!(
            there,
            (here + 10).min(19),
            "KDF thread nice {there}, caller {here}"
        );
    }

    #[tokio::test]
    async fn pool_runs_jobs_and_refuses_when_full() {
        let pool = KdfPool::new(tiny(), 1, 1);
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
        // Block the only thread, fill the one queue slot, then the next is refused.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move |_| wait.recv().ok()).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|_| 1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(pool.waiting(), 1, "one job queued behind the blocked one");
        assert!(matches!(pool.run(|_| 2).await, Err(KdfError::QueueFull)));
        assert_eq!(pool.waiting(), 1, "a refused job is not counted");
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().is_ok());
        assert_eq!(queued.await.unwrap().unwrap(), 1);
        assert_eq!(pool.waiting(), 0);
    }
}
