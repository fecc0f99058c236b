//! SQL of two-step sign-in (see [`crate::store::two_step`]): TOTP secrets, recovery codes and
//! pending sign-ins. SQLite has one writer, so each conditional update is atomic by itself.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::store::Result;
use crate::store::two_step::{NewPending, Pending, TotpRecord, TwoStepState};

fn insert_codes(
    tx: &rusqlite::Connection,
    user_id: i64,
    codes: &[[u8; 32]],
    now_ms: i64,
) -> Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO recovery_codes (user_id, hash, created_at) VALUES (?1, ?2, ?3)",
    )?;
    for h in codes {
        insert.execute(params![user_id, &h[..], now_ms])?;
    }
    Ok(())
}

impl SqliteStore {
    pub fn begin_totp(&self, user_id: i64, sealed: &[u8], now_ms: i64) -> Result<bool> {
        self.write(|c| {
            Ok(c.execute(
                "INSERT INTO totp (user_id, secret, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE
                    SET secret = excluded.secret, created_at = excluded.created_at, last_step = -1
                  WHERE totp.enabled_at IS NULL",
                params![user_id, sealed, now_ms],
            )? == 1)
        })
    }

    pub fn confirm_totp(
        &self,
        user_id: i64,
        step: i64,
        codes: &[[u8; 32]],
        now_ms: i64,
    ) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let on = tx.execute(
                "UPDATE totp SET enabled_at = ?2, last_step = ?3
                  WHERE user_id = ?1 AND enabled_at IS NULL",
                params![user_id, now_ms, step],
            )? == 1;
            if !on {
                return Ok(false);
            }
            insert_codes(&tx, user_id, codes, now_ms)?;
            tx.commit()?;
            Ok(true)
        })
    }

    pub fn two_step_state(&self, user_id: i64) -> Result<TwoStepState> {
        self.read(|c| {
            let totp = c
                .prepare_cached(
                    "SELECT secret, enabled_at, last_step FROM totp WHERE user_id = ?1",
                )?
                .query_row([user_id], |r| {
                    Ok(TotpRecord {
                        sealed_secret: r.get(0)?,
                        enabled_at_ms: r.get(1)?,
                        last_step: r.get(2)?,
                    })
                })
                .optional()?;
            let recovery_left = c
                .prepare_cached(
                    "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                )?
                .query_row([user_id], |r| r.get(0))?;
            Ok(TwoStepState {
                totp,
                recovery_left,
            })
        })
    }

    pub fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        self.write(|c| {
            Ok(c.prepare_cached(
                "UPDATE totp SET last_step = ?2
                  WHERE user_id = ?1 AND last_step < ?2 AND enabled_at IS NOT NULL",
            )?
            .execute(params![user_id, step])?
                == 1)
        })
    }

    pub fn use_recovery_code(&self, user_id: i64, hash: &[u8; 32], now_ms: i64) -> Result<bool> {
        self.write(|c| {
            Ok(c.prepare_cached(
                "UPDATE recovery_codes SET used_at = ?3
                  WHERE user_id = ?1 AND hash = ?2 AND used_at IS NULL
                    AND EXISTS (SELECT 1 FROM totp t WHERE t.user_id = ?1 AND t.enabled_at IS NOT NULL)",
            )?
            .execute(params![user_id, &hash[..], now_ms])?
                == 1)
        })
    }

    pub fn replace_recovery_codes(
        &self,
        user_id: i64,
        codes: &[[u8; 32]],
        now_ms: i64,
    ) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let on: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM totp WHERE user_id = ?1 AND enabled_at IS NOT NULL)",
                [user_id],
                |r| r.get(0),
            )?;
            if !on {
                return Ok(false);
            }
            insert_codes(&tx, user_id, codes, now_ms)?;
            tx.commit()?;
            Ok(true)
        })
    }

    pub fn turn_off_totp(&self, user_id: i64) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let had = tx.execute("DELETE FROM totp WHERE user_id = ?1", [user_id])? == 1;
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
            tx.execute("DELETE FROM pending_sign_ins WHERE user_id = ?1", [user_id])?;
            tx.commit()?;
            Ok(had)
        })
    }

    pub fn reset_second_factors(&self, user_id: i64) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut removed = 0;
            for sql in [
                "DELETE FROM totp WHERE user_id = ?1",
                "DELETE FROM recovery_codes WHERE user_id = ?1",
                "DELETE FROM passkeys WHERE user_id = ?1",
                "DELETE FROM webauthn_ceremonies WHERE user_id = ?1",
                "DELETE FROM pending_sign_ins WHERE user_id = ?1",
            ] {
                removed += tx.execute(sql, [user_id])?;
            }
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    pub fn create_pending(&self, p: &NewPending) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO pending_sign_ins
                        (hash, user_id, password_changed_at, next_url, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                &p.hash[..],
                p.user_id,
                p.password_changed_ms,
                p.next_url,
                p.now_ms,
                p.expires_ms
            ])?;
            Ok(())
        })
    }

    /// The pending sign-in of `hash`, deleted when `take` (or when expired).
    pub fn pending(&self, hash: &[u8; 32], now_ms: i64, take: bool) -> Result<Option<Pending>> {
        self.write(|c| {
            let found = c
                .prepare_cached(
                    "DELETE FROM pending_sign_ins WHERE hash = ?1 AND (?3 OR expires_at <= ?2)
                     RETURNING user_id, password_changed_at, next_url, created_at, expires_at",
                )?
                .query_row(params![&hash[..], now_ms, take], pending_row)
                .optional()?;
            let found = match found {
                Some(p) => Some(p),
                None => c
                    .prepare_cached(
                        "SELECT user_id, password_changed_at, next_url, created_at, expires_at
                           FROM pending_sign_ins WHERE hash = ?1",
                    )?
                    .query_row([&hash[..]], pending_row)
                    .optional()?,
            };
            Ok(found.filter(|p| p.expires_ms > now_ms))
        })
    }

    pub fn purge_expired_pending(&self, now_ms: i64) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "DELETE FROM pending_sign_ins WHERE expires_at <= ?1",
                [now_ms],
            )?)
        })
    }
}

fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Pending> {
    Ok(Pending {
        user_id: r.get(0)?,
        password_changed_ms: r.get(1)?,
        next_url: r.get(2)?,
        created_ms: r.get(3)?,
        expires_ms: r.get(4)?,
    })
}
