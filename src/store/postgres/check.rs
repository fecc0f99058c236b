//! `gatehouse db check` on PostgreSQL: what can go wrong in a database the server does not
//! own alone. The server itself keeps pages and indexes sound, so instead of SQLite's
//! `integrity_check` this looks at what a restore, a hand edit or a half-finished operation
//! can leave: the schema version and its tables, constraints left unvalidated, invalid
//! indexes, rows whose user is gone, email keys that disagree with their address, and the
//! key fingerprint. Read-only, on a connection of its own: a check never creates or upgrades
//! the schema (opening a [`super::PgStore`] would).

use super::connect::{self, Spawning};
use super::{PgOptions, SCHEMA};
use crate::store::{CheckReport, Result, StoreError};

/// The tables the schema creates, each checked to exist.
pub const TABLES: &[&str] = &[
    "users",
    "sessions",
    "audit_events",
    "user_groups",
    "tokens",
    "retired_usernames",
    "outbox",
    "mail_rate",
    "meta",
    "fail_lock",
    "totp",
    "recovery_codes",
    "pending_sign_ins",
    "passkeys",
    "webauthn_ceremonies",
];

/// Rows that point at a user who is not there (the foreign keys forbid them; a restore with
/// triggers disabled, or a dropped constraint, does not).
const ORPHANS: &[(&str, &str)] = &[
    (
        "sessions",
        "SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)",
    ),
    (
        "user_groups",
        "SELECT count(*) FROM user_groups g WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = g.user_id)",
    ),
    (
        "tokens",
        "SELECT count(*) FROM tokens t WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id)",
    ),
];

/// The schema of the database at `url`, checked; see the module's comment.
pub async fn check(url: &str, options: &PgOptions) -> Result<CheckReport> {
    let (config, tls, _) = connect::parse(url, options)?;
    let (client, io) = Spawning::open(&config, &tls, &tokio::runtime::Handle::current()).await?;
    let report = check_on(&client).await;
    drop(client);
    let _ = io.await;
    report
}

async fn check_on(client: &tokio_postgres::Client) -> Result<CheckReport> {
    let latest = crate::store::sqlite::sections(SCHEMA)
        .last()
        .map_or(0, |s| s.0);
    // One snapshot for every count, and nothing written whatever a bug here might try.
    // A check scans whole tables: longer than `--db-timeout` allows a request's statement.
    client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = 0",
        )
        .await?;
    let exists = |table: &'static str| async move {
        let row = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await?;
        Ok::<bool, StoreError>(row.get(0))
    };
    let mut problems = Vec::new();
    let schema_version: i64 = if exists("schema_version").await? {
        let rows = client
            .query("SELECT version FROM schema_version", &[])
            .await?;
        if rows.len() != 1 {
            problems.push(format!(
                "schema_version holds {} rows (one expected)",
                rows.len()
            ));
        }
        rows.iter().map(|r| r.get::<_, i64>(0)).max().unwrap_or(0)
    } else {
        0
    };
    if schema_version == 0 {
        client.batch_execute("COMMIT").await?;
        return Ok(CheckReport {
            problems,
            schema_version,
            latest_version: latest,
            users: 0,
            sessions: 0,
        });
    }
    let mut present = Vec::new();
    for table in TABLES {
        if exists(table).await? {
            present.push(*table);
        } else if schema_version >= latest {
            problems.push(format!("table {table} is missing"));
        }
    }
    for row in client
        .query(
            "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c
             JOIN pg_namespace n ON n.oid = c.connamespace
             WHERE n.nspname = current_schema() AND NOT c.convalidated
             ORDER BY 1, 2",
            &[],
        )
        .await?
    {
        let (table, name): (String, String) = (row.get(0), row.get(1));
        problems.push(format!(
            "constraint {name} on {table} is not validated (rows may break it)"
        ));
    }
    for row in client
        .query(
            "SELECT i.indexrelid::regclass::text FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)
             ORDER BY 1",
            &[],
        )
        .await?
    {
        let name: String = row.get(0);
        problems.push(format!("index {name} is invalid: REINDEX it"));
    }
    let has = |t: &str| present.contains(&t);
    if has("users") {
        for (table, sql) in ORPHANS {
            if !has(table) {
                continue;
            }
            let n: i64 = client.query_one(*sql, &[]).await?.get(0);
            if n > 0 {
                problems.push(format!("{table}: {n} row(s) point at a missing user"));
            }
        }
        // `domain::email_key` is ASCII lower-casing, which `translate` computes exactly
        // (`lower` would fold other letters as the database's locale says).
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM users
                 WHERE email_key IS DISTINCT FROM translate(email,
                     'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')",
                &[],
            )
            .await?
            .get(0);
        if n > 0 {
            problems.push(format!(
                "users: {n} row(s) whose email_key is not their address lower-cased"
            ));
        }
    }
    if has("meta")
        && let Some(row) = client
            .query_opt("SELECT value FROM meta WHERE name = 'key_fingerprint'", &[])
            .await?
    {
        let value: String = row.get(0);
        if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(format!(
                "meta: key_fingerprint {value:?} is not a fingerprint (16 hex digits)"
            ));
        }
    }
    let count = |table: &'static str| async move {
        if !has(table) {
            return Ok::<i64, StoreError>(0);
        }
        Ok(client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0))
    };
    let users = count("users").await?;
    let sessions = count("sessions").await?;
    client.batch_execute("COMMIT").await?;
    Ok(CheckReport {
        problems,
        schema_version,
        latest_version: latest,
        users,
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Backend, TestDb, fresh_pg_database, pg_client};

    async fn run_sql(url: &str, sql: &str) {
        pg_client(url).await.batch_execute(sql).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_database_is_version_0_and_stays_empty() {
        let url = fresh_pg_database();
        let report = check(&url, &PgOptions::default()).await.unwrap();
        assert_eq!(report.schema_version, 0);
        assert_eq!(report.latest_version, 8);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let client = pg_client(&url).await;
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "a check creates nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sound_database_passes_and_damage_is_named() {
        let db = TestDb::new(Backend::Postgres);
        drop(db.store());
        let url = db.url().to_owned();
        run_sql(
            &url,
            "INSERT INTO users (username, email, email_key, password_hash, created_at,
                                updated_at, password_changed_at)
             VALUES ('ann', 'Ann@Example.org', 'ann@example.org', '$argon2id$x', 1, 1, 1);
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
             SELECT decode(repeat('ab', 32), 'hex'), id, 1, 1, 2 FROM users;
             INSERT INTO meta VALUES ('key_fingerprint', '0123456789abcdef');",
        )
        .await;
        let report = check(&url, &PgOptions::default()).await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(
            (report.schema_version, report.users, report.sessions),
            (8, 1, 1)
        );

        // What a careless restore or hand edit leaves.
        run_sql(
            &url,
            "ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
             INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
             VALUES (decode(repeat('cd', 32), 'hex'), 999, 1, 1, 2);
             ALTER TABLE tokens DROP CONSTRAINT tokens_user_id_fkey;
             ALTER TABLE tokens ADD CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id)
                 REFERENCES users(id) NOT VALID;
             UPDATE users SET email_key = 'ANN@example.org';
             UPDATE meta SET value = 'nope';
             DROP TABLE mail_rate;",
        )
        .await;
        let report = check(&url, &PgOptions::default()).await.unwrap();
        let all = report.problems.join("\n");
        for expected in [
            "sessions: 1 row(s) point at a missing user",
            "constraint tokens_user_id_fkey on tokens is not validated",
            "users: 1 row(s) whose email_key",
            "key_fingerprint \"nope\"",
            "table mail_rate is missing",
        ] {
            assert!(all.contains(expected), "{expected:?} not in:\n{all}");
        }
        assert_eq!(report.problems.len(), 5, "{all}");
        assert_eq!(report.sessions, 2);
    }
}
