//! The audit trail as the database holds it, read directly from the SQLite file (or the
//! PostgreSQL database).

use std::time::{Duration, Instant};

use super::server::TestApp;

impl TestApp {
    /// Audit rows (event, outcome, username, count) as the database holds them, after waiting
    /// up to 5 s for `expect` to hold (the server writes them in the background).
    pub async fn audit_rows(&self, expect: impl Fn(&[AuditRow]) -> bool) -> Vec<AuditRow> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rows = self.read_audit();
            if expect(&rows) || Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn read_audit(&self) -> Vec<AuditRow> {
        if self.backend() == super::postgres::Backend::Postgres {
            return self.read_audit_anywhere();
        }
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT event, outcome, username, user_id, ip, user_agent, count, at, last_at, detail
                 FROM audit_events ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(AuditRow {
                event: r.get(0)?,
                outcome: r.get(1)?,
                username: r.get(2)?,
                user_id: r.get(3)?,
                ip: r.get(4)?,
                user_agent: r.get(5)?,
                count: r.get(6)?,
                at: r.get(7)?,
                last_at: r.get(8)?,
                detail: r.get(9)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }
}

/// One row of `audit_events`.
#[derive(Clone, Debug)]
pub struct AuditRow {
    pub event: String,
    pub outcome: String,
    pub username: Option<String>,
    pub user_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub count: i64,
    pub at: i64,
    pub last_at: i64,
    pub detail: Option<String>,
}

impl TestApp {
    /// The audit rows through backend-neutral SQL (PostgreSQL hands every value over as text).
    fn read_audit_anywhere(&self) -> Vec<AuditRow> {
        let int = |v: &Option<String>| v.as_deref().map(|s| s.parse::<i64>().unwrap());
        self.query_rows(
            "SELECT event, outcome, username, user_id, ip, user_agent, count, at, last_at, detail
             FROM audit_events ORDER BY id",
        )
        .into_iter()
        .map(|r| AuditRow {
            event: r[0].clone().unwrap(),
            outcome: r[1].clone().unwrap(),
            username: r[2].clone(),
            user_id: int(&r[3]),
            ip: r[4].clone(),
            user_agent: r[5].clone(),
            count: int(&r[6]).unwrap(),
            at: int(&r[7]).unwrap(),
            last_at: int(&r[8]).unwrap(),
            detail: r[9].clone(),
        })
        .collect()
    }
}

impl AuditRow {
    pub fn is(&self, event: &str, outcome: &str, username: &str) -> bool {
        self.event == event && self.outcome == outcome && self.username.as_deref() == Some(username)
    }
}
