//! SQL behind the admin commands on PostgreSQL: user management, session listing, the seed
//! import's batches and the benchmark's bulk data (the SQLite twin is `sqlite/admin.rs`). A
//! write that can change a session's validity forgets the user in this instance's cache at
//! once; the database's triggers tell the other instances.

use std::path::Path;

use super::PgStore;
use crate::domain::Username;
use crate::store::{ImportOutcome, Result, SessionListing, StoreError, UserDetails};

const USER_COLUMNS: &str = "u.id, u.username, u.email, u.full_name, u.active, u.created_at,
     u.password_changed_at, u.unlocked_at,
     (SELECT count(*) FROM sessions s WHERE s.user_id = u.id),
     u.email_verified_at IS NOT NULL, u.pending_email";

fn user_row(r: &tokio_postgres::Row) -> UserDetails {
    UserDetails {
        id: r.get(0),
        username: r.get(1),
        email: r.get(2),
        full_name: r.get(3),
        active: r.get(4),
        created_ms: r.get(5),
        password_changed_ms: r.get(6),
        unlocked_ms: r.get(7),
        sessions: r.get(8),
        email_verified: r.get(9),
        pending_email: r.get(10),
    }
}

impl PgStore {
    /// Users in byte order of their names, as on SQLite (a database's locale collation would
    /// sort `ab_c` after `abb`).
    pub async fn list_users(&self) -> Result<Vec<UserDetails>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username COLLATE \"C\""),
                &[],
            )
            .await?;
        Ok(rows.iter().map(user_row).collect())
    }

    /// Deletes a user by id (their own account deletion); whether there was one. Their
    /// sessions, groups and links go with them (foreign keys), the name is retired (trigger).
    pub async fn delete_user_by_id(&self, user_id: i64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM users WHERE id = $1", &[&user_id])
            .await?;
        self.inner.cache.forget_user(user_id);
        Ok(n == 1)
    }

    pub async fn user_details_by_id(&self, user_id: i64) -> Result<Option<UserDetails>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
                &[&user_id],
            )
            .await?;
        Ok(row.as_ref().map(user_row))
    }

    pub async fn user_details(&self, username: &Username) -> Result<Option<UserDetails>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1"),
                &[&username.as_str()],
            )
            .await?;
        Ok(row.as_ref().map(user_row))
    }

    /// Enables or disables a user; disabling ends their sessions in the same transaction.
    /// Returns the user's id, or `None` when there is no such user.
    pub async fn set_active(
        &self,
        username: &Username,
        active: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The UPDATE locks the user's row, which a sign-in opening a session locks too
        // (`sessions.rs`): that session either committed first, and is deleted here, or
        // waits and then finds the user disabled.
        let id: Option<i64> = tx
            .query_opt(
                "UPDATE users SET active = $2, updated_at = $3 WHERE username = $1 RETURNING id",
                &[&username.as_str(), &active, &now_ms],
            )
            .await?
            .map(|r| r.get(0));
        if let (Some(id), false) = (id, active) {
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
                .await?;
        }
        tx.commit().await?;
        if let Some(id) = id {
            self.inner.cache.forget_user(id);
        }
        Ok(id)
    }

    /// Deletes a user (their sessions go with them). Returns the id it had.
    pub async fn delete_user(&self, username: &Username) -> Result<Option<i64>> {
        let client = self.client().await?;
        let id: Option<i64> = client
            .query_opt(
                "DELETE FROM users WHERE username = $1 RETURNING id",
                &[&username.as_str()],
            )
            .await?
            .map(|r| r.get(0));
        if let Some(id) = id {
            self.inner.cache.forget_user(id);
        }
        Ok(id)
    }

    /// Records an admin unlock: every instance forgives lock records older than `now_ms`
    /// (they read `unlocked_at` with the credentials of each attempt).
    pub async fn unlock_user(&self, username: &Username, now_ms: i64) -> Result<Option<i64>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "UPDATE users SET unlocked_at = $2 WHERE username = $1 RETURNING id",
                &[&username.as_str(), &now_ms],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// An admin's new password: replaces the hash, moves `password_changed_at` (which kills
    /// device cookies and, by trigger, reset links), ends every session and lifts the lock.
    /// Returns the user's id.
    pub async fn set_password(
        &self,
        username: &Username,
        hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id: Option<i64> = tx
            .query_opt(
                "UPDATE users SET password_hash = $2, updated_at = $3,
                        password_changed_at = GREATEST($3, password_changed_at + 1),
                        unlocked_at = $3
                 WHERE username = $1 RETURNING id",
                &[&username.as_str(), &hash, &now_ms],
            )
            .await?
            .map(|r| r.get(0));
        if let Some(id) = id {
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
                .await?;
        }
        tx.commit().await?;
        if let Some(id) = id {
            self.inner.cache.forget_user(id);
        }
        Ok(id)
    }

    /// Live sessions (not past their absolute or idle limit), optionally of one user.
    pub async fn list_sessions(
        &self,
        username: Option<&Username>,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Vec<SessionListing>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.id, u.username, s.created_at, s.last_seen_at, s.expires_at, s.ip,
                        s.user_agent
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.expires_at > $1 AND s.last_seen_at > $1 - $2
                   AND ($3::text IS NULL OR u.username = $3)
                 ORDER BY s.id",
                &[&now_ms, &idle_ms, &username.map(Username::as_str)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SessionListing {
                id: r.get(0),
                username: r.get(1),
                created_ms: r.get(2),
                last_seen_ms: r.get(3),
                expires_ms: r.get(4),
                ip: r.get(5),
                user_agent: r.get(6),
            })
            .collect())
    }

    /// Deletes a session by its public id. Returns its owner's (id, username). One
    /// statement: the owner is read from the row it deleted.
    pub async fn revoke_session(&self, session_id: i64) -> Result<Option<(i64, String)>> {
        let client = self.client().await?;
        let owner: Option<(i64, String)> = client
            .query_opt(
                "DELETE FROM sessions s USING users u
                 WHERE s.id = $1 AND u.id = s.user_id
                 RETURNING u.id, u.username",
                &[&session_id],
            )
            .await?
            .map(|r| (r.get(0), r.get(1)));
        if let Some((id, _)) = &owner {
            self.inner.cache.forget_user(*id);
        }
        Ok(owner)
    }

    /// Inserts imported users (hashes computed beforehand), skipping names that exist, in one
    /// statement (one transaction). A name twice in the batch: the first is imported.
    pub async fn import_users(
        &self,
        users: &[(Username, String)],
        now_ms: i64,
    ) -> Result<Vec<ImportOutcome>> {
        let names: Vec<&str> = users.iter().map(|(n, _)| n.as_str()).collect();
        let hashes: Vec<&str> = users.iter().map(|(_, h)| h.as_str()).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "INSERT INTO users (username, password_hash, active, created_at, updated_at,
                                    password_changed_at)
                 SELECT t.name, t.hash, TRUE, $3, $3, $3
                 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(name, hash, n)
                 ORDER BY t.n
                 ON CONFLICT (username) DO NOTHING
                 RETURNING username",
                &[&names, &hashes, &now_ms],
            )
            .await?;
        let mut inserted: std::collections::HashSet<String> =
            rows.iter().map(|r| r.get(0)).collect();
        Ok(names
            .iter()
            .map(|name| match inserted.remove(*name) {
                true => ImportOutcome::Imported,
                false => ImportOutcome::Exists,
            })
            .collect())
    }

    /// Users whose name does not start with `prefix` (bench-data's guard).
    pub async fn count_users_outside(&self, prefix: &str) -> Result<i64> {
        let client = self.client().await?;
        Ok(client
            .query_one(
                "SELECT count(*) FROM users WHERE substr(username, 1, length($1)) <> $1",
                &[&prefix],
            )
            .await?
            .get(0))
    }

    /// Benchmark data: see [`crate::store::sqlite::SqliteStore::bench_fill`]. Two statements
    /// in one transaction whatever the batch's size: the users generated by the server
    /// (`generate_series`), the sessions' token hashes sent as one array.
    pub async fn bench_fill(
        &self,
        prefix: &str,
        range: std::ops::Range<u64>,
        session_id: impl Fn(u64) -> Option<crate::security::session::SessionId>,
        hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        let (from, to) = (as_i64(range.start)?, as_i64(range.end)?);
        let mut names = Vec::new();
        let mut hashes = Vec::new();
        for n in range {
            if let Some(id) = session_id(n) {
                names.push(format!("{prefix}{n}"));
                hashes.push(id.hash().to_vec());
            }
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO users (username, password_hash, active, created_at, updated_at,
                                password_changed_at)
             SELECT $1 || n, $2, TRUE, $3, $3, $3 FROM generate_series($4::bigint, $5::bigint - 1) AS n
             ON CONFLICT (username) DO NOTHING",
            &[&prefix, &hash, &now_ms, &from, &to],
        )
        .await?;
        if !names.is_empty() {
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
                 SELECT t.hash, u.id, $3, $3, $4
                 FROM unnest($1::text[], $2::bytea[]) AS t(name, hash)
                 JOIN users u ON u.username = t.name
                 ORDER BY t.hash
                 ON CONFLICT (token_hash) DO NOTHING",
                &[&names, &hashes, &now_ms, &expires_ms],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `gatehouse db backup` copies a SQLite file; a PostgreSQL database has its own tools.
    pub fn backup_to(&self, _dest: &Path, _progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        Err(StoreError::Backend(format!(
            "`gatehouse db backup` copies a SQLite file; back up PostgreSQL with pg_dump \
             (e.g. `pg_dump --format=custom --file=gatehouse.dump '{}'`, restored with \
             pg_restore)",
            self.display()
        )))
    }
}

fn as_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("{n} is out of range")))
}

#[cfg(test)]
mod tests {
    use crate::domain::Username;
    use crate::store::testing::{Backend, TestDb};
    use crate::store::{ImportOutcome, Store};

    fn name(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    fn session_ids(n: usize) -> Vec<crate::security::session::SessionId> {
        (0..n)
            .map(|_| crate::security::session::SessionId::generate())
            .collect()
    }

    const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    /// Imports and the benchmark's bulk data give the same users and sessions on both
    /// backends, and the admin reads see them the same way.
    async fn bulk_writes_and_admin_reads(backend: Backend) {
        let db = TestDb::new(backend);
        let store = db.store();
        let out = store
            .import_users(
                &[
                    (name("ann"), HASH.into()),
                    (name("bob"), HASH.into()),
                    (name("ann"), HASH.into()),
                ],
                10,
            )
            .await
            .unwrap();
        assert_eq!(
            out,
            [
                ImportOutcome::Imported,
                ImportOutcome::Imported,
                ImportOutcome::Exists
            ]
        );
        let again = store
            .import_users(
                &[(name("bob"), HASH.into()), (name("cy_1"), HASH.into())],
                20,
            )
            .await
            .unwrap();
        assert_eq!(again, [ImportOutcome::Exists, ImportOutcome::Imported]);
        assert_eq!(store.count_users_outside("bench").await.unwrap(), 3);
        let ids = session_ids(12);
        let id = |n: u64| n.is_multiple_of(2).then(|| ids[n as usize].clone());
        store
            .bench_fill("bench", 0..10, id, HASH, 100, 1_000_000)
            .await
            .unwrap();
        // Again over an overlapping range: nothing doubles.
        store
            .bench_fill("bench", 5..12, id, HASH, 100, 1_000_000)
            .await
            .unwrap();
        assert_eq!(store.count_users_outside("bench").await.unwrap(), 3);
        let users = store.list_users().await.unwrap();
        assert_eq!(users.len(), 15);
        let bench4 = store.user_details(&name("bench4")).await.unwrap().unwrap();
        assert_eq!((bench4.sessions, bench4.active), (1, true));
        assert_eq!(
            store
                .user_details(&name("bench5"))
                .await
                .unwrap()
                .unwrap()
                .sessions,
            0
        );
        let found = store.session(&ids[4].hash()).await.unwrap().unwrap();
        assert_eq!(found.user.username, "bench4");
        let listed = store.list_sessions(None, 200, 1_000).await.unwrap();
        assert_eq!(listed.len(), 6, "bench0, 2, 4, 6, 8, 10");
        let only = store
            .list_sessions(Some(&name("bench4")), 200, 1_000)
            .await
            .unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].username, "bench4");
        assert!(
            store
                .list_sessions(None, 2_000, 1_000)
                .await
                .unwrap()
                .is_empty(),
            "idle past the limit"
        );
        let by_id = store.user_details_by_id(bench4.id).await.unwrap().unwrap();
        assert_eq!(by_id, bench4);
    }

    /// Disabling, a new password and a revoke end sessions at once (this instance's cache
    /// included); enabling does not bring them back; a deleted user's name stays retired.
    async fn admin_writes_end_sessions(backend: Backend) {
        let db = TestDb::new(backend);
        let store: Store = db.store();
        let ids = session_ids(3);
        let id = |n: u64| Some(ids[n as usize].clone());
        store
            .bench_fill("bench", 0..3, id, HASH, 100, i64::MAX)
            .await
            .unwrap();
        let cookie = |n: usize| ids[n].hash();
        // Cached on PostgreSQL (a hit next time) before each change.
        assert!(store.session(&cookie(0)).await.unwrap().is_some());
        let uid = store.set_active(&name("bench0"), false, 200).await.unwrap();
        assert!(uid.is_some());
        assert!(store.session(&cookie(0)).await.unwrap().is_none());
        let d = store.user_details(&name("bench0")).await.unwrap().unwrap();
        assert_eq!((d.active, d.sessions), (false, 0));
        assert_eq!(
            store.set_active(&name("bench0"), true, 300).await.unwrap(),
            uid
        );
        assert!(
            store
                .user_details(&name("bench0"))
                .await
                .unwrap()
                .unwrap()
                .active
        );
        assert_eq!(
            store.set_active(&name("nobody"), false, 1).await.unwrap(),
            None
        );

        assert!(store.session(&cookie(1)).await.unwrap().is_some());
        let before = store.user_details(&name("bench1")).await.unwrap().unwrap();
        let u1 = store
            .set_password(&name("bench1"), HASH, 50)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u1, before.id);
        let after = store.user_details(&name("bench1")).await.unwrap().unwrap();
        assert_eq!(
            after.password_changed_ms, 101,
            "moves even with an older clock"
        );
        assert_eq!((after.unlocked_ms, after.sessions), (50, 0));
        assert!(store.session(&cookie(1)).await.unwrap().is_none());
        assert_eq!(
            store.unlock_user(&name("bench1"), 77).await.unwrap(),
            Some(u1)
        );
        assert_eq!(
            store
                .user_details(&name("bench1"))
                .await
                .unwrap()
                .unwrap()
                .unlocked_ms,
            77
        );
        assert_eq!(store.unlock_user(&name("nobody"), 77).await.unwrap(), None);

        let found = store.session(&cookie(2)).await.unwrap().unwrap();
        let (owner, owner_name) = store.revoke_session(found.id).await.unwrap().unwrap();
        assert_eq!(owner_name, "bench2");
        assert!(store.session(&cookie(2)).await.unwrap().is_none());
        assert_eq!(store.revoke_session(found.id).await.unwrap(), None);

        assert_eq!(
            store.delete_user(&name("bench2")).await.unwrap(),
            Some(owner)
        );
        assert_eq!(store.delete_user(&name("bench2")).await.unwrap(), None);
        assert!(store.delete_user_by_id(u1).await.unwrap());
        assert!(!store.delete_user_by_id(u1).await.unwrap());
        // The names are retired: sign-up refuses them.
        assert_eq!(
            store.taken(&name("bench2"), None).await.unwrap(),
            Some(crate::store::Taken::Username)
        );
        let left: Vec<String> = store
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(left, ["bench0"]);
    }

    crate::both_backends!(bulk_writes_and_admin_reads, admin_writes_end_sessions);

    #[test]
    fn a_backup_on_postgresql_points_at_pg_dump() {
        let db = TestDb::new(Backend::Postgres);
        let err = db
            .store()
            .backup_to(std::path::Path::new("/nonexistent/x"), &mut |_, _| {})
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!err.contains("not built yet"), "{err}");
    }
}
