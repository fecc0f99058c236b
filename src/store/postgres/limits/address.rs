//! The address throttle and the KDF budget (`address_failures`, `kdf_budget`): each
//! decision one statement.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{Client, PgStore, clamp_i32, clamp_i64, cut, unavailable};
use crate::clock::Timestamp;
use crate::security::limits::LimitsError;
use crate::security::throttle::{AddressKey, GuardSettings, Refusal, Reserved};

/// How an address group is stored: `192.0.2.1`, `2001:db8:1:2::/64`.
fn address(key: AddressKey) -> String {
    match key {
        AddressKey::V4(v4) => Ipv4Addr::from(v4).to_string(),
        AddressKey::V6Prefix(p) => format!("{}/64", Ipv6Addr::from(u128::from(p) << 64)),
    }
}

/// Counts one failure for address `$1` at `$2` (live after `$3`), as `AddressGuard::count`:
/// added only for a stored address or while the table holds fewer than `$4` rows.
const COUNT_FAILURE: &str = "
WITH room AS (
    SELECT EXISTS (SELECT 1 FROM address_failures WHERE address = $1)
        OR COALESCE((SELECT n FROM address_rows WHERE name = 'address_failures'), 0)
           < $4::bigint AS ok
)
INSERT INTO address_failures AS f (address, failures, last)
SELECT $1::text, 1, $2::bigint FROM room WHERE ok
ON CONFLICT (address) DO UPDATE SET
    failures = CASE WHEN f.last > $3::bigint THEN LEAST(f.failures, 2147483646) + 1 ELSE 1 END,
    last = GREATEST(f.last, $2::bigint)";

/// `AddressGuard::reserve` in one statement: the KDF budget's verdict (checked only when
/// `$5`), then the address's failures' verdict atomically with counting one more (refused
/// when `$6` failures are live), then the count, added only if there is room (`$4` rows).
/// Returns whether the budget allowed it, whether there was room, whether the failure was
/// counted, and the stored bucket and failure record for the Rust side's retry times.
const RESERVE_ADDRESS: &str = "
WITH bucket AS (
    SELECT tokens, last FROM kdf_budget WHERE address = $1 AND $5::boolean
), cur AS (
    SELECT last FROM address_failures WHERE address = $1
), verdict AS (
    SELECT NOT EXISTS (
               SELECT 1 FROM bucket
               WHERE LEAST(tokens + GREATEST(0, $2::bigint - last)::float8 / 1000 * $7::float8,
                           $8::float8) < 1
           ) AS budget_ok,
           EXISTS (SELECT 1 FROM cur)
           OR COALESCE((SELECT n FROM address_rows WHERE name = 'address_failures'), 0)
              < $4::bigint AS room
), counted AS (
    INSERT INTO address_failures AS f (address, failures, last)
    SELECT $1::text, 1, $2::bigint FROM verdict WHERE budget_ok AND room
    ON CONFLICT (address) DO UPDATE SET
        failures = CASE WHEN f.last > $3::bigint
                        THEN LEAST(f.failures, 2147483646) + 1 ELSE 1 END,
        last = GREATEST(f.last, $2::bigint)
    WHERE NOT (f.failures >= $6::integer AND f.last > $3::bigint)
    RETURNING 1
)
SELECT v.budget_ok, v.room, EXISTS (SELECT 1 FROM counted),
       (SELECT tokens FROM bucket), (SELECT last FROM bucket), (SELECT last FROM cur)
FROM verdict v";

/// `AddressGuard::spend_kdf` in one statement: refill (`$3` per second up to `$4`), and take
/// one token unless the pool is contended (`$6`) and less than one is there. A new bucket
/// starts full, and is added only while the table holds fewer than `$5` rows.
const SPEND_KDF: &str = "
WITH bucket AS (
    SELECT tokens, last FROM kdf_budget WHERE address = $1
), room AS (
    SELECT EXISTS (SELECT 1 FROM bucket)
        OR COALESCE((SELECT n FROM address_rows WHERE name = 'kdf_budget'), 0)
           < $5::bigint AS ok
), spent AS (
    INSERT INTO kdf_budget AS b (address, tokens, last)
    SELECT $1::text, GREATEST($4::float8 - 1, 0), $2::bigint FROM room WHERE ok
    ON CONFLICT (address) DO UPDATE SET
        tokens = GREATEST(LEAST(b.tokens + GREATEST(0, $2::bigint - b.last)::float8 / 1000
                                * $3::float8, $4::float8) - 1, 0),
        last = GREATEST(b.last, $2::bigint)
    WHERE NOT $6::boolean
       OR LEAST(b.tokens + GREATEST(0, $2::bigint - b.last)::float8 / 1000 * $3::float8,
                $4::float8) >= 1
    RETURNING 1
)
SELECT room.ok, EXISTS (SELECT 1 FROM spent), (SELECT tokens FROM bucket),
       (SELECT last FROM bucket)
FROM room";

/// Deletes the buckets that have refilled to the burst: they carry nothing worth keeping.
const DELETE_FULL_BUCKETS: &str = "
DELETE FROM kdf_budget
WHERE LEAST(tokens + GREATEST(0, $1::bigint - last)::float8 / 1000 * $2::float8, $3::float8)
      >= $3::float8";

/// The per-address failure throttle and KDF budget in the `address_failures` and
/// `kdf_budget` tables: [`crate::security::throttle::AddressGuard`]'s rules for every instance
/// on the database at once. Whether the KDF pool is `contended` stays each instance's own.
pub struct PgAddressGuard {
    store: PgStore,
    max_failures: u32,
    window: Duration,
    kdf_per_minute: u32,
    capacity: usize,
}

impl PgAddressGuard {
    /// The same limits as `settings` (see `AddressGuard::new`: zero turns a limit off).
    pub fn new(store: PgStore, settings: GuardSettings) -> Self {
        Self {
            store,
            max_failures: settings.max_failures,
            window: settings.window,
            kdf_per_minute: settings.kdf_per_minute,
            capacity: settings.capacity.max(1),
        }
    }

    fn per_sec(&self) -> f64 {
        f64::from(self.kdf_per_minute) / 60.0
    }

    fn burst(&self) -> f64 {
        f64::from(self.kdf_per_minute)
    }

    fn refilled(&self, tokens: f64, last: i64, now: Timestamp) -> f64 {
        (tokens + now.since(Timestamp::from_ms(last)).as_secs_f64() * self.per_sec())
            .min(self.burst())
    }

    fn wait_for_token(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - tokens) / self.per_sec()).max(1.0))
    }

    /// The failures' refusal: until the last failure is a window old.
    fn throttled_since(&self, last: Option<i64>, now: Timestamp) -> Refusal {
        let last = last.map_or(now, Timestamp::from_ms);
        let left = self.window.saturating_sub(now.since(last));
        Refusal::Throttled(left.max(Duration::from_secs(1)))
    }

    /// Whether the address may try now, counting nothing: one read of both records.
    pub async fn admit(
        &self,
        ip: std::net::IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Result<(), Refusal>, LimitsError> {
        let budget_on = self.kdf_per_minute > 0 && contended;
        if self.max_failures == 0 && !budget_on {
            return Ok(Ok(()));
        }
        let client = self.store.limits_client().await?;
        let statement = client
            .prepare_cached(
                "SELECT f.failures, f.last, b.tokens, b.last
                 FROM (VALUES (1)) AS o(x)
                 LEFT JOIN address_failures f ON f.address = $1
                 LEFT JOIN kdf_budget b ON b.address = $1",
            )
            .await
            .map_err(unavailable)?;
        let row = client
            .query_one(&statement, &[&address(AddressKey::of(ip))])
            .await
            .map_err(unavailable)?;
        let failures: Option<i32> = row.get(0);
        let failed_last: Option<i64> = row.get(1);
        if self.max_failures > 0
            && let (Some(count), Some(last)) = (failures, failed_last)
            && i64::from(count) >= i64::from(self.max_failures)
            && now.since(Timestamp::from_ms(last)) < self.window
        {
            return Ok(Err(self.throttled_since(Some(last), now)));
        }
        let tokens: Option<f64> = row.get(2);
        let bucket_last: Option<i64> = row.get(3);
        if budget_on && let (Some(tokens), Some(last)) = (tokens, bucket_last) {
            let tokens = self.refilled(tokens, last, now);
            if tokens < 1.0 {
                return Ok(Err(Refusal::Throttled(self.wait_for_token(tokens))));
            }
        }
        Ok(Ok(()))
    }

    /// The authoritative verdict, atomic with reserving one failure (see [`RESERVE_ADDRESS`]).
    /// On a full table the expired failures are swept and the reservation tried once more;
    /// still full, it goes uncounted (logged), as in memory.
    pub async fn reserve(
        &self,
        ip: std::net::IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Result<Reserved, Refusal>, LimitsError> {
        let budget_on = self.kdf_per_minute > 0 && contended;
        if self.max_failures == 0 {
            // Nothing to count: only the budget can refuse.
            return Ok(match self.admit(ip, now, contended).await? {
                Ok(()) => Ok(Reserved::new(None)),
                Err(refusal) => Err(refusal),
            });
        }
        let key = AddressKey::of(ip);
        let client = self.store.limits_client().await?;
        let statement = client
            .prepare_cached(RESERVE_ADDRESS)
            .await
            .map_err(unavailable)?;
        for attempt in 0..2 {
            let row = client
                .query_one(
                    &statement,
                    &[
                        &address(key),
                        &now.as_ms(),
                        &cut(now, self.window),
                        &clamp_i64(self.capacity),
                        &budget_on,
                        &clamp_i32(self.max_failures),
                        &self.per_sec(),
                        &self.burst(),
                    ],
                )
                .await
                .map_err(unavailable)?;
            let (budget_ok, room, counted): (bool, bool, bool) =
                (row.get(0), row.get(1), row.get(2));
            if !budget_ok {
                let tokens: f64 = row.get::<_, Option<f64>>(3).unwrap_or(0.0);
                let last: i64 = row.get::<_, Option<i64>>(4).unwrap_or(now.as_ms());
                let tokens = self.refilled(tokens, last, now);
                return Ok(Err(Refusal::Throttled(self.wait_for_token(tokens))));
            }
            if counted {
                return Ok(Ok(Reserved::new(Some(key))));
            }
            if room {
                return Ok(Err(self.throttled_since(row.get(5), now)));
            }
            if attempt == 0 {
                self.delete_expired_failures(&client, now).await?;
            }
        }
        tracing::warn!("address failure table full; a failure was not counted");
        Ok(Ok(Reserved::new(None)))
    }

    /// Gives back a failure from [`PgAddressGuard::reserve`], as [`PgFailLock::release`] does.
    pub async fn release(&self, reserved: Reserved) {
        let Some(key) = reserved.into_key() else {
            return;
        };
        let result = async {
            let client = self.store.limits_client().await?;
            let address = address(key);
            let statement = client
                .prepare_cached(
                    "UPDATE address_failures SET failures = failures - 1
                     WHERE address = $1 AND failures > 0 RETURNING failures",
                )
                .await
                .map_err(unavailable)?;
            let left = client
                .query_opt(&statement, &[&address])
                .await
                .map_err(unavailable)?;
            if left.is_some_and(|r| r.get::<_, i32>(0) == 0) {
                client
                    .execute(
                        "DELETE FROM address_failures WHERE address = $1 AND failures <= 0",
                        &[&address],
                    )
                    .await
                    .map_err(unavailable)?;
            }
            Ok(())
        }
        .await;
        log("release", result);
    }

    /// Counts one failure that ran no KDF.
    pub async fn failed(&self, ip: std::net::IpAddr, now: Timestamp) {
        if self.max_failures == 0 {
            return;
        }
        let result = async {
            let client = self.store.limits_client().await?;
            let statement = client
                .prepare_cached(COUNT_FAILURE)
                .await
                .map_err(unavailable)?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
                &address(AddressKey::of(ip)),
                &now.as_ms(),
                &cut(now, self.window),
                &clamp_i64(self.capacity),
            ];
            if client
                .execute(&statement, &params)
                .await
                .map_err(unavailable)?
                == 1
            {
                return Ok(());
            }
            self.delete_expired_failures(&client, now).await?;
            if client
                .execute(&statement, &params)
                .await
                .map_err(unavailable)?
                == 0
            {
                tracing::warn!("address failure table full; a failure was not counted");
            }
            Ok(())
        }
        .await;
        log("failure", result);
    }

    /// Takes one Argon2 run from the address's budget (see [`SPEND_KDF`]). A new address
    /// finding the table full is refused after the full buckets have been swept.
    pub async fn spend_kdf(
        &self,
        ip: std::net::IpAddr,
        now: Timestamp,
        contended: bool,
    ) -> Result<Result<(), Refusal>, LimitsError> {
        if self.kdf_per_minute == 0 {
            return Ok(Ok(()));
        }
        let client = self.store.limits_client().await?;
        let statement = client
            .prepare_cached(SPEND_KDF)
            .await
            .map_err(unavailable)?;
        for attempt in 0..2 {
            let row = client
                .query_one(
                    &statement,
                    &[
                        &address(AddressKey::of(ip)),
                        &now.as_ms(),
                        &self.per_sec(),
                        &self.burst(),
                        &clamp_i64(self.capacity),
                        &contended,
                    ],
                )
                .await
                .map_err(unavailable)?;
            let (room, spent): (bool, bool) = (row.get(0), row.get(1));
            if spent {
                return Ok(Ok(()));
            }
            if room {
                let tokens: f64 = row.get::<_, Option<f64>>(2).unwrap_or(0.0);
                let last: i64 = row.get::<_, Option<i64>>(3).unwrap_or(now.as_ms());
                let tokens = self.refilled(tokens, last, now);
                return Ok(Err(Refusal::Throttled(self.wait_for_token(tokens))));
            }
            if attempt == 0 {
                self.delete_full_buckets(&client, now).await?;
            }
        }
        Ok(Err(Refusal::Full(Duration::from_secs(60))))
    }

    async fn delete_expired_failures(
        &self,
        client: &Client,
        now: Timestamp,
    ) -> Result<(), LimitsError> {
        client
            .execute(
                "DELETE FROM address_failures WHERE last <= $1",
                &[&cut(now, self.window)],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_full_buckets(
        &self,
        client: &Client,
        now: Timestamp,
    ) -> Result<(), LimitsError> {
        client
            .execute(
                DELETE_FULL_BUCKETS,
                &[&now.as_ms(), &self.per_sec(), &self.burst()],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Forgets expired failure records and full buckets, and sets the row counts to the
    /// truth again (see [`PgFailLock::sweep`]).
    pub async fn sweep(&self, now: Timestamp) {
        let result = async {
            let client = self.store.limits_client().await?;
            self.delete_expired_failures(&client, now).await?;
            self.delete_full_buckets(&client, now).await?;
            client
                .batch_execute(
                    "UPDATE address_rows SET n = (SELECT count(*) FROM address_failures)
                     WHERE name = 'address_failures';
                     UPDATE address_rows SET n = (SELECT count(*) FROM kdf_budget)
                     WHERE name = 'kdf_budget';",
                )
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .await;
        log("sweep", result);
    }

    /// (failure records, KDF buckets) held; zeros if the database cannot say.
    pub async fn sizes(&self) -> (usize, usize) {
        let result = async {
            let client = self.store.limits_client().await?;
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM address_failures),
                            (SELECT count(*) FROM kdf_budget)",
                    &[],
                )
                .await
                .map_err(unavailable)?;
            let size = |n: i64| usize::try_from(n).unwrap_or(0);
            Ok((size(row.get(0)), size(row.get(1))))
        }
        .await;
        result.unwrap_or_else(|e: LimitsError| {
            tracing::debug!("address table sizes unknown: {e}");
            (0, 0)
        })
    }
}

fn log(what: &str, result: Result<(), LimitsError>) {
    if let Err(e) = result {
        tracing::warn!("address throttle {what} lost: {e}");
    }
}
