//! SQL of the audit trail: batched inserts with per-episode counts, queries for
//! `gatehouse audit` and `/account`, and retention.

use rusqlite::{params, params_from_iter, types::Value};

use super::SqliteStore;
use crate::store::{AuditEvent, AuditFilter, AuditRow, Result};

const COLUMNS: &str =
    "id, at, last_at, count, event, outcome, username, user_id, ip, user_agent, detail";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        last_ms: r.get(2)?,
        count: r.get(3)?,
        event: r.get(4)?,
        outcome: r.get(5)?,
        username: r.get(6)?,
        user_id: r.get(7)?,
        ip: r.get(8)?,
        user_agent: r.get(9)?,
        detail: r.get(10)?,
    })
}

impl SqliteStore {
    /// Writes new events and adds attempts to open episodes, in one transaction. Returns the new
    /// rows' ids in the order of `new`. `bumps` are (row id, added count, last time).
    pub fn write_audit(&self, new: &[AuditEvent], bumps: &[(i64, i64, i64)]) -> Result<Vec<i64>> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut ids = Vec::with_capacity(new.len());
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO audit_events
                       (at, last_at, count, event, outcome, username, user_id, ip, user_agent, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for e in new {
                    insert.execute(params![
                        e.at_ms,
                        e.last_ms.max(e.at_ms),
                        e.count.max(1),
                        e.event,
                        e.outcome,
                        e.username,
                        e.user_id,
                        e.ip,
                        e.user_agent.as_deref().map(truncate_agent),
                        e.detail,
                    ])?;
                    ids.push(tx.last_insert_rowid());
                }
                let mut bump = tx.prepare_cached(
                    "UPDATE audit_events SET count = count + ?2, last_at = max(last_at, ?3)
                     WHERE id = ?1",
                )?;
                for (id, add, last) in bumps {
                    bump.execute(params![id, add, last])?;
                }
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    /// Events matching `filter`, oldest first.
    pub fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(u) = &filter.username {
            args.push(u.clone().into());
            sql.push_str(&format!(" AND username = ?{}", args.len()));
        }
        if let Some(t) = filter.since_ms {
            args.push(t.into());
            sql.push_str(&format!(" AND last_at >= ?{}", args.len()));
        }
        if let Some(e) = &filter.event {
            args.push(e.clone().into());
            sql.push_str(&format!(" AND event = ?{}", args.len()));
        }
        args.push((filter.limit.min(i64::MAX as usize) as i64).into());
        sql = format!(
            "SELECT * FROM ({sql} ORDER BY at DESC, id DESC LIMIT ?{}) ORDER BY at, id",
            args.len()
        );
        self.read(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The user's most recent successful sign-ins, newest first.
    pub fn recent_sign_ins(&self, user_id: i64, limit: usize) -> Result<Vec<AuditRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM audit_events
                 WHERE user_id = ?1 AND event = 'sign_in' AND outcome = 'ok'
                 ORDER BY at DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![user_id, limit as i64], row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Failed and locked sign-in attempts on the user's name after `since_ms`, episodes counted
    /// by their attempts.
    pub fn failed_sign_ins_since(&self, user_id: i64, since_ms: i64) -> Result<i64> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT coalesce(sum(count), 0) FROM audit_events
                 WHERE user_id = ?1 AND event = 'sign_in' AND outcome IN ('failed', 'locked')
                   AND last_at > ?2",
            )?
            .query_row(params![user_id, since_ms], |r| r.get(0))?)
        })
    }

    /// Deletes events whose last attempt is older than `before_ms`. Returns how many.
    pub fn purge_audit(&self, before_ms: i64) -> Result<usize> {
        self.write(|c| Ok(c.execute("DELETE FROM audit_events WHERE last_at < ?1", [before_ms])?))
    }
}

/// User agents are attacker-chosen: keep at most 256 characters.
fn truncate_agent(ua: &str) -> &str {
    match ua.char_indices().nth(256) {
        Some((at, _)) => &ua[..at],
        None => ua,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64, event: &'static str, outcome: &'static str, user: &str) -> AuditEvent {
        AuditEvent {
            at_ms: at,
            last_ms: at,
            count: 1,
            event,
            outcome,
            username: Some(user.into()),
            user_id: Some(7),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("x".repeat(1000)),
            detail: None,
        }
    }

    #[test]
    fn writes_bumps_filters_and_purges() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("db")).unwrap();
        let ids = s
            .write_audit(
                &[
                    event(1_000, "sign_in", "ok", "alice"),
                    event(2_000, "sign_in", "locked", "alice"),
                    event(3_000, "sign_up", "ok", "bob"),
                ],
                &[],
            )
            .unwrap();
        s.write_audit(&[], &[(ids[1], 4, 2_500)]).unwrap();
        let all = s
            .audit_events(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].count, 5);
        assert_eq!(all[1].last_ms, 2_500);
        assert_eq!(all[0].user_agent.as_ref().unwrap().len(), 256);
        let alice = s
            .audit_events(&AuditFilter {
                username: Some("alice".into()),
                since_ms: Some(1_500),
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(alice.len(), 1);
        assert_eq!(alice[0].outcome, "locked");
        let newest = s
            .audit_events(&AuditFilter {
                limit: 2,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            newest.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
            [2_000, 3_000]
        );
        assert_eq!(s.recent_sign_ins(7, 5).unwrap().len(), 1);
        assert_eq!(s.failed_sign_ins_since(7, 1_000).unwrap(), 5);
        assert_eq!(s.failed_sign_ins_since(7, 2_600).unwrap(), 0);
        assert_eq!(s.purge_audit(2_600).unwrap(), 2);
    }
}
