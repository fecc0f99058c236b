//! SQL of two-step sign-in on PostgreSQL, as `sqlite/two_step.rs`. Several instances write at
//! once: a time step is accepted, a recovery code spent and a pending sign-in taken each by
//! one conditional statement, so of two instances racing exactly one wins; the changes of
//! several rows (confirming, new codes) lock the user's `totp` row first.

use deadpool_postgres::GenericClient;

use super::PgStore;
use crate::store::Result;
use crate::store::two_step::{NewPending, Pending, TotpRecord, TwoStepState};

async fn insert_codes(
    tx: &impl GenericClient,
    user_id: i64,
    codes: &[[u8; 32]],
    now_ms: i64,
) -> Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])
        .await?;
    let hashes: Vec<&[u8]> = codes.iter().map(|h| &h[..]).collect();
    tx.execute(
        "INSERT INTO recovery_codes (user_id, hash, created_at)
         SELECT $1, h, $3 FROM unnest($2::bytea[]) AS h ON CONFLICT DO NOTHING",
        &[&user_id, &hashes, &now_ms],
    )
    .await?;
    Ok(())
}

fn pending_row(r: &tokio_postgres::Row) -> Pending {
    Pending {
        user_id: r.get(0),
        password_changed_ms: r.get(1),
        next_url: r.get(2),
        created_ms: r.get(3),
        expires_ms: r.get(4),
    }
}

impl PgStore {
    pub async fn begin_totp(&self, user_id: i64, sealed: Vec<u8>, now_ms: i64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO totp (user_id, secret, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE
                    SET secret = excluded.secret, created_at = excluded.created_at, last_step = -1
                  WHERE totp.enabled_at IS NULL",
                &[&user_id, &sealed, &now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn confirm_totp(
        &self,
        user_id: i64,
        step: i64,
        codes: Vec<[u8; 32]>,
        now_ms: i64,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let on = tx
            .execute(
                "UPDATE totp SET enabled_at = $2, last_step = $3
                  WHERE user_id = $1 AND enabled_at IS NULL",
                &[&user_id, &now_ms, &step],
            )
            .await?
            == 1;
        if !on {
            return Ok(false);
        }
        insert_codes(&tx, user_id, &codes, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn two_step_state(&self, user_id: i64) -> Result<TwoStepState> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT t.secret, t.enabled_at, t.last_step,
                        (SELECT count(*) FROM recovery_codes r
                          WHERE r.user_id = $1 AND r.used_at IS NULL)
                   FROM (SELECT 1) AS one LEFT JOIN totp t ON t.user_id = $1",
            )
            .await?;
        let row = client.query_one(&stmt, &[&user_id]).await?;
        let secret: Option<Vec<u8>> = row.get(0);
        Ok(TwoStepState {
            totp: secret.map(|sealed_secret| TotpRecord {
                sealed_secret,
                enabled_at_ms: row.get(1),
                last_step: row.get(2),
            }),
            recovery_left: row.get(3),
        })
    }

    pub async fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE totp SET last_step = $2
                  WHERE user_id = $1 AND last_step < $2 AND enabled_at IS NOT NULL",
            )
            .await?;
        Ok(client.execute(&stmt, &[&user_id, &step]).await? == 1)
    }

    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        hash: [u8; 32],
        now_ms: i64,
    ) -> Result<bool> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE recovery_codes SET used_at = $3
                  WHERE user_id = $1 AND hash = $2 AND used_at IS NULL
                    AND EXISTS (SELECT 1 FROM totp t
                                 WHERE t.user_id = $1 AND t.enabled_at IS NOT NULL)",
            )
            .await?;
        Ok(client
            .execute(&stmt, &[&user_id, &&hash[..], &now_ms])
            .await?
            == 1)
    }

    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        codes: Vec<[u8; 32]>,
        now_ms: i64,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The user's `totp` row, locked: turning codes off waits for this to finish.
        let on = tx
            .query_opt(
                "SELECT 1 FROM totp WHERE user_id = $1 AND enabled_at IS NOT NULL FOR UPDATE",
                &[&user_id],
            )
            .await?
            .is_some();
        if !on {
            return Ok(false);
        }
        insert_codes(&tx, user_id, &codes, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn turn_off_totp(&self, user_id: i64) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let had = tx
            .execute("DELETE FROM totp WHERE user_id = $1", &[&user_id])
            .await?
            == 1;
        tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])
            .await?;
        tx.execute(
            "DELETE FROM pending_sign_ins WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        tx.commit().await?;
        Ok(had)
    }

    pub async fn reset_second_factors(&self, user_id: i64) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut removed = 0;
        for sql in [
            "DELETE FROM totp WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM passkeys WHERE user_id = $1",
            "DELETE FROM webauthn_ceremonies WHERE user_id = $1",
            "DELETE FROM pending_sign_ins WHERE user_id = $1",
        ] {
            removed += tx.execute(sql, &[&user_id]).await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }

    pub async fn create_pending(&self, p: NewPending) -> Result<()> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO pending_sign_ins
                        (hash, user_id, password_changed_at, next_url, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &&p.hash[..],
                    &p.user_id,
                    &p.password_changed_ms,
                    &p.next_url,
                    &p.now_ms,
                    &p.expires_ms,
                ],
            )
            .await?;
        Ok(())
    }

    /// The pending sign-in of `hash`, deleted when `take` (or when expired).
    pub async fn pending(
        &self,
        hash: [u8; 32],
        now_ms: i64,
        take: bool,
    ) -> Result<Option<Pending>> {
        let client = self.client().await?;
        let delete = client
            .prepare_cached(
                "DELETE FROM pending_sign_ins WHERE hash = $1 AND ($3 OR expires_at <= $2)
                 RETURNING user_id, password_changed_at, next_url, created_at, expires_at",
            )
            .await?;
        let found = match client
            .query_opt(&delete, &[&&hash[..], &now_ms, &take])
            .await?
        {
            Some(r) => Some(pending_row(&r)),
            None if take => None,
            None => {
                let select = client
                    .prepare_cached(
                        "SELECT user_id, password_changed_at, next_url, created_at, expires_at
                           FROM pending_sign_ins WHERE hash = $1",
                    )
                    .await?;
                client
                    .query_opt(&select, &[&&hash[..]])
                    .await?
                    .map(|r| pending_row(&r))
            }
        };
        Ok(found.filter(|p| p.expires_ms > now_ms))
    }

    pub async fn purge_expired_pending(&self, now_ms: i64) -> Result<usize> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM pending_sign_ins WHERE expires_at <= $1",
                &[&now_ms],
            )
            .await?;
        Ok(n as usize)
    }
}
