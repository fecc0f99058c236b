//! The audit trail on PostgreSQL: batched inserts with per-episode counts, the queries of
//! `gatehouse audit` and `/account`, and retention (mirrors the SQLite store's `audit.rs`).

use tokio_postgres::types::ToSql;

use super::PgStore;
use crate::store::{AuditEvent, AuditFilter, AuditRow, Result};

const COLUMNS: &str =
    "id, at, last_at, count, event, outcome, username, user_id, ip, user_agent, detail";

fn row(r: &tokio_postgres::Row) -> AuditRow {
    AuditRow {
        id: r.get(0),
        at_ms: r.get(1),
        last_ms: r.get(2),
        count: r.get(3),
        event: r.get(4),
        outcome: r.get(5),
        username: r.get(6),
        user_id: r.get(7),
        ip: r.get(8),
        user_agent: r.get(9),
        detail: r.get(10),
    }
}

impl PgStore {
    /// Writes new events and adds attempts to open episodes, in one transaction. Returns the
    /// new rows' ids in the order of `new`. `bumps` are (row id, added count, last time).
    pub async fn write_audit(
        &self,
        new: &[AuditEvent],
        bumps: &[(i64, i64, i64)],
    ) -> Result<Vec<i64>> {
        if new.is_empty() && bumps.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut ids = Vec::with_capacity(new.len());
        if !new.is_empty() {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO audit_events
                       (at, last_at, count, event, outcome, username, user_id, ip, user_agent,
                        detail)
                     SELECT at, last_at, count, event, outcome, username, user_id, ip,
                            user_agent, detail
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                                 $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[],
                                 $10::text[])
                          WITH ORDINALITY
                          AS e(at, last_at, count, event, outcome, username, user_id, ip,
                               user_agent, detail, n)
                     ORDER BY n
                     RETURNING id",
                )
                .await?;
            let at: Vec<i64> = new.iter().map(|e| e.at_ms).collect();
            let last: Vec<i64> = new.iter().map(|e| e.last_ms.max(e.at_ms)).collect();
            let count: Vec<i64> = new.iter().map(|e| e.count.max(1)).collect();
            let event: Vec<&str> = new.iter().map(|e| e.event).collect();
            let outcome: Vec<&str> = new.iter().map(|e| e.outcome).collect();
            let username: Vec<Option<&str>> = new.iter().map(|e| e.username.as_deref()).collect();
            let user_id: Vec<Option<i64>> = new.iter().map(|e| e.user_id).collect();
            let ip: Vec<Option<&str>> = new.iter().map(|e| e.ip.as_deref()).collect();
            let agent: Vec<Option<&str>> = new
                .iter()
                .map(|e| e.user_agent.as_deref().map(truncate_agent))
                .collect();
            let detail: Vec<Option<&str>> = new.iter().map(|e| e.detail.as_deref()).collect();
            let rows = tx
                .query(
                    &insert,
                    &[
                        &at, &last, &count, &event, &outcome, &username, &user_id, &ip, &agent,
                        &detail,
                    ],
                )
                .await?;
            // Identity values are drawn as the rows are inserted, in `n` order: ascending ids
            // are `new`'s order whatever order RETURNING lists them in.
            ids.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
            ids.sort_unstable();
        }
        if !bumps.is_empty() {
            // One row per id (an UPDATE … FROM applies one match per row): counts add up, the
            // latest time wins, as SQLite's one UPDATE per bump does.
            let mut merged: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
            for &(id, add, last) in bumps {
                let m = merged.entry(id).or_insert((0, last));
                m.0 += add;
                m.1 = m.1.max(last);
            }
            let id: Vec<i64> = merged.keys().copied().collect();
            let add: Vec<i64> = merged.values().map(|m| m.0).collect();
            let last: Vec<i64> = merged.values().map(|m| m.1).collect();
            let bump = tx
                .prepare_cached(
                    "UPDATE audit_events a
                     SET count = a.count + b.add, last_at = greatest(a.last_at, b.last)
                     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS b(id, add, last)
                     WHERE a.id = b.id",
                )
                .await?;
            tx.execute(&bump, &[&id, &add, &last]).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Events matching `filter`: the newest `limit`, oldest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(u) = &filter.username {
            args.push(Box::new(u.clone()));
            sql.push_str(&format!(" AND username = ${}", args.len()));
        }
        if let Some(t) = filter.since_ms {
            args.push(Box::new(t));
            sql.push_str(&format!(" AND last_at >= ${}", args.len()));
        }
        if let Some(e) = &filter.event {
            args.push(Box::new(e.clone()));
            sql.push_str(&format!(" AND event = ${}", args.len()));
        }
        args.push(Box::new(filter.limit.min(i64::MAX as usize) as i64));
        let sql = format!(
            "SELECT * FROM ({sql} ORDER BY at DESC, id DESC LIMIT ${}) AS newest ORDER BY at, id",
            args.len()
        );
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let client = self.client().await?;
        Ok(client.query(&sql, &params).await?.iter().map(row).collect())
    }

    /// The user's most recent successful sign-ins, newest first.
    pub async fn recent_sign_ins(&self, user_id: i64, limit: usize) -> Result<Vec<AuditRow>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_events
                 WHERE user_id = $1 AND event = 'sign_in' AND outcome = 'ok'
                 ORDER BY at DESC, id DESC LIMIT $2"
            ))
            .await?;
        let limit = limit.min(i64::MAX as usize) as i64;
        Ok(client
            .query(&stmt, &[&user_id, &limit])
            .await?
            .iter()
            .map(row)
            .collect())
    }

    /// Failed and locked sign-in attempts on the user's name after `since_ms`, episodes counted
    /// by their attempts.
    pub async fn failed_sign_ins_since(&self, user_id: i64, since_ms: i64) -> Result<i64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT coalesce(sum(count), 0)::bigint FROM audit_events
                 WHERE user_id = $1 AND event = 'sign_in' AND outcome IN ('failed', 'locked')
                   AND last_at > $2",
            )
            .await?;
        Ok(client
            .query_one(&stmt, &[&user_id, &since_ms])
            .await?
            .get(0))
    }

    /// Deletes events whose last attempt is older than `before_ms`. Returns how many.
    pub async fn purge_audit(&self, before_ms: i64) -> Result<usize> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM audit_events WHERE last_at < $1", &[&before_ms])
            .await? as usize)
    }
}

/// User agents are attacker-chosen: keep at most 256 characters (the column's bound).
pub(super) fn truncate_agent(ua: &str) -> &str {
    match ua.char_indices().nth(256) {
        Some((at, _)) => &ua[..at],
        None => ua,
    }
}
