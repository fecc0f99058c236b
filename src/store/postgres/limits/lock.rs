//! The fail-lock records (`fail_lock`): one statement checks the lock and counts the attempt.

use std::time::Duration;

use super::{Client, PgStore, clamp_i32, clamp_i64, cut, unavailable};
use crate::clock::Timestamp;
use crate::security::faillock::Reservation;
use crate::security::limits::LimitsError;

/// Which of the two fail-locks a [`PgFailLock`] is: rows of both share one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Keyed by canonical username.
    User,
    /// Keyed by device id.
    Device,
}

impl LockKind {
    fn as_str(self) -> &'static str {
        match self {
            LockKind::User => "user",
            LockKind::Device => "device",
        }
    }
}

/// Checks the lock and counts the attempt in one statement. The insert happens only for a key
/// already stored or while the kind holds fewer than `capacity` rows; no row back means Full.
/// A stale record (or a zero count left by a release) restarts at 1 from `now`; the result is
/// the new count, and the attempt was refused iff it exceeds `attempts` (the record was live
/// and at the limit before it).
const RESERVE: &str = "
INSERT INTO fail_lock AS f (kind, key, failures, last_failure, started)
SELECT $1::text, $2::text, 1, $3::bigint, $3::bigint
WHERE EXISTS (SELECT 1 FROM fail_lock WHERE kind = $1 AND key = $2)
   OR COALESCE((SELECT n FROM fail_lock_rows WHERE kind = $1), 0) < $5::bigint
ON CONFLICT (kind, key) DO UPDATE SET
    failures = CASE WHEN f.failures > 0 AND f.last_failure > $4::bigint
                    THEN LEAST(f.failures, 2147483646) + 1 ELSE 1 END,
    started = CASE WHEN f.failures > 0 AND f.last_failure > $4::bigint
                   THEN f.started ELSE $3::bigint END,
    last_failure = GREATEST(f.last_failure, $3::bigint)
RETURNING failures";

/// A fail-lock in the `fail_lock` table: [`crate::security::faillock::FailLock`]'s rules for
/// every instance on the database at once.
pub struct PgFailLock {
    store: PgStore,
    kind: LockKind,
    attempts: u32,
    window: Duration,
    capacity: usize,
}

impl PgFailLock {
    pub fn new(
        store: PgStore,
        kind: LockKind,
        attempts: u32,
        window: Duration,
        capacity: usize,
    ) -> Self {
        Self {
            store,
            kind,
            attempts: attempts.max(1),
            window,
            capacity: capacity.max(1),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// One [`RESERVE`]: the verdict, or `None` when the table is full for a new key.
    async fn try_reserve(
        &self,
        client: &Client,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Reservation>, LimitsError> {
        let statement = client.prepare_cached(RESERVE).await.map_err(unavailable)?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &self.kind.as_str(),
                    &key,
                    &now.as_ms(),
                    &cut(now, self.window),
                    &clamp_i64(self.capacity),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| {
            let failures: i32 = row.get(0);
            if i64::from(failures) > i64::from(self.attempts) {
                Reservation::Locked {
                    retry_after: self.window,
                }
            } else {
                Reservation::Proceed
            }
        }))
    }

    /// Checks the lock and reserves one failure, atomically across instances. On a full table
    /// the expired rows are swept and the attempt tried once more before answering Full.
    pub async fn reserve(&self, key: &str, now: Timestamp) -> Result<Reservation, LimitsError> {
        let client = self.store.limits_client().await?;
        if let Some(r) = self.try_reserve(&client, key, now).await? {
            return Ok(r);
        }
        self.delete_expired(&client, now).await?;
        if let Some(r) = self.try_reserve(&client, key, now).await? {
            return Ok(r);
        }
        let oldest: Option<i64> = client
            .query_one(
                "SELECT min(last_failure) FROM fail_lock WHERE kind = $1 AND last_failure > $2",
                &[&self.kind.as_str(), &cut(now, self.window)],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        let oldest = oldest.map_or(now, Timestamp::from_ms);
        let retry_after = self.window.saturating_sub(now.since(oldest));
        Ok(Reservation::Full {
            retry_after: retry_after.max(Duration::from_secs(1)),
        })
    }

    pub async fn is_locked(&self, key: &str, now: Timestamp) -> Result<bool, LimitsError> {
        let client = self.store.limits_client().await?;
        let statement = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM fail_lock WHERE kind = $1 AND key = $2
                                AND failures >= $3 AND last_failure > $4)",
            )
            .await
            .map_err(unavailable)?;
        let row = client
            .query_one(
                &statement,
                &[
                    &self.kind.as_str(),
                    &key,
                    &clamp_i32(self.attempts),
                    &cut(now, self.window),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.get(0))
    }

    /// Drops the record if its run of failures began at or before `unlocked_ms`.
    pub async fn forgive(&self, key: &str, unlocked_ms: i64) {
        self.log(
            "forgive",
            self.execute(
                "DELETE FROM fail_lock WHERE kind = $1 AND key = $2 AND started <= $3",
                &[&self.kind.as_str(), &key, &unlocked_ms],
            )
            .await,
        );
    }

    /// Clears the record by marking it empty and expired rather than deleting it: the next
    /// [`RESERVE`] of the name then updates the row instead of inserting one, and neither
    /// statement fires the row-count triggers, whose one counter row every sign-in would
    /// otherwise update twice (and queue on). An emptied row is a stale one to every rule
    /// (`failures = 0`, `last_failure = 0`): it restarts at 1, locks nothing, is not counted
    /// by [`Self::records`], and is reclaimed by the sweep or when the table is full.
    pub async fn succeeded(&self, key: &str) {
        self.log(
            "success",
            self.execute(
                "UPDATE fail_lock SET failures = 0, last_failure = 0, started = 0
                 WHERE kind = $1 AND key = $2 AND (failures <> 0 OR last_failure <> 0)",
                &[&self.kind.as_str(), &key],
            )
            .await,
        );
    }

    /// Gives back one failure: the decrement is one statement (exact under concurrency); a
    /// record left at zero is then deleted unless an attempt counted in it meanwhile.
    pub async fn release(&self, key: &str) {
        let result = async {
            let client = self.store.limits_client().await?;
            let statement = client
                .prepare_cached(
                    "UPDATE fail_lock SET failures = failures - 1
                     WHERE kind = $1 AND key = $2 AND failures > 0 RETURNING failures",
                )
                .await
                .map_err(unavailable)?;
            let left = client
                .query_opt(&statement, &[&self.kind.as_str(), &key])
                .await
                .map_err(unavailable)?;
            if left.is_some_and(|r| r.get::<_, i32>(0) == 0) {
                client
                    .execute(
                        "DELETE FROM fail_lock WHERE kind = $1 AND key = $2 AND failures <= 0",
                        &[&self.kind.as_str(), &key],
                    )
                    .await
                    .map_err(unavailable)?;
            }
            Ok(())
        }
        .await;
        self.log("release", result);
    }

    async fn delete_expired(&self, client: &Client, now: Timestamp) -> Result<(), LimitsError> {
        client
            .execute(
                "DELETE FROM fail_lock WHERE kind = $1 AND last_failure <= $2",
                &[&self.kind.as_str(), &cut(now, self.window)],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deletes expired records and sets the row count to the truth again (it can only have
    /// drifted if rows were changed with the triggers off).
    pub async fn sweep(&self, now: Timestamp) {
        let result = async {
            let client = self.store.limits_client().await?;
            self.delete_expired(&client, now).await?;
            client
                .execute(
                    "UPDATE fail_lock_rows SET n = (SELECT count(*) FROM fail_lock WHERE kind = $1)
                     WHERE kind = $1",
                    &[&self.kind.as_str()],
                )
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .await;
        self.log("sweep", result);
    }

    /// Records held (live or not yet swept), rows emptied by a success aside; 0 if the
    /// database cannot say.
    pub async fn records(&self) -> usize {
        let result = async {
            let client = self.store.limits_client().await?;
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM fail_lock WHERE kind = $1 AND failures > 0",
                    &[&self.kind.as_str()],
                )
                .await
                .map_err(unavailable)?
                .get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        }
        .await;
        result.unwrap_or_else(|e: LimitsError| {
            tracing::debug!("fail-lock size unknown: {e}");
            0
        })
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), LimitsError> {
        let client = self.store.limits_client().await?;
        let statement = client.prepare_cached(sql).await.map_err(unavailable)?;
        client
            .execute(&statement, params)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Bookkeeping errors are logged, not returned: a lost release or success leaves a failure
    /// counted, the safe side.
    fn log(&self, what: &str, result: Result<(), LimitsError>) {
        if let Err(e) = result {
            tracing::warn!(lock = self.kind.as_str(), "fail-lock {what} lost: {e}");
        }
    }
}
