//! `gatehouse db check` (SQLite or PostgreSQL), `gatehouse db backup PATH` (SQLite) and
//! `gatehouse db copy --to postgres://…` (SQLite into an empty PostgreSQL).

use super::{AdminError, Result, audit_admin, display, existing_store, refused, wait};
use crate::cli::{Config, DbCommand};
use crate::progress::{Progress, Unit};
use crate::store::postgres::{self, PgStore};
use crate::store::{CheckReport, Store};

pub fn run(config: &Config, command: DbCommand) -> Result<()> {
    match command {
        DbCommand::Check => check(config),
        DbCommand::Backup { path } => backup(config, &path),
        DbCommand::Copy { to } => copy(config, &to),
    }
}

/// Where the database is, for messages (a URL without its password).
fn shown(config: &Config) -> String {
    match config.database.to_str() {
        Some(url) if config.database_is_url() => postgres::redact(url),
        _ => display(&config.database),
    }
}

fn check(config: &Config) -> Result<()> {
    let report = if config.database_is_url() {
        let url = config.database.to_str().unwrap_or_default();
        wait(postgres::check::check(url, &config.pg_options()))?
    } else {
        if !config.database.exists() {
            return refused(format!("no database at {}", display(&config.database)));
        }
        crate::store::sqlite::check(&config.database)?
    };
    report_check(&report);
    if !report.problems.is_empty() {
        return refused(format!("{}: integrity check failed", shown(config)));
    }
    if report.schema_version > report.latest_version {
        return refused("the database is newer than this gatehouse: upgrade the binary");
    }
    // Only a current schema is opened for writing: a check never upgrades the database.
    if report.schema_version == report.latest_version {
        let store = existing_store(config)?;
        match wait(store.key_fingerprint())? {
            Some(f) => println!("key fingerprint: {f}"),
            None => println!("key fingerprint: none yet (the first server start records it)"),
        }
        audit_admin(&store, "admin.db.check", "ok", None, None, None);
    }
    Ok(())
}

fn backup(config: &Config, path: &std::path::Path) -> Result<()> {
    if config.database_is_url() {
        return refused(
            "`gatehouse db backup` copies a SQLite file; back up PostgreSQL with pg_dump \
             (e.g. `pg_dump --format=custom --file=gatehouse.dump DBNAME`, restored into an \
             empty database with pg_restore)",
        );
    }
    let store = existing_store(config)?;
    // `symlink_metadata`: a dangling symlink is something there too.
    if path.symlink_metadata().is_ok() {
        return Err(crate::store::StoreError::Exists(display(path)).into());
    }
    // The total is known at the first step: the size of the snapshot.
    let mut progress: Option<Progress> = None;
    let result = store.backup_to(path, &mut |done, total| {
        progress
            .get_or_insert_with(|| Progress::start("db backup", total, Unit::Bytes))
            .set(done)
    });
    if let Some(p) = &progress
        && result.is_ok()
    {
        p.finish();
    }
    drop(progress);
    result?;
    let report = crate::store::sqlite::check(path)?;
    if !report.problems.is_empty() {
        return refused(format!("the copy at {} failed its check", display(path)));
    }
    audit_admin(
        &store,
        "admin.db.backup",
        "ok",
        None,
        None,
        Some(format!("to {}", display(path))),
    );
    eprintln!(
        "backed up {} users and {} sessions to {}",
        report.users,
        report.sessions,
        display(path)
    );
    Ok(())
}

/// `db copy --to URL`: see [`crate::store::postgres::copy`]. The source's server must be
/// stopped (its lock is taken for the copy's length), so nothing it does afterwards is lost.
fn copy(config: &Config, to: &str) -> Result<()> {
    if config.database_is_url() {
        return refused(
            "db copy reads a SQLite database: pass its file as --database (the PostgreSQL \
             one goes in --to)",
        );
    }
    if !postgres::is_url(to) {
        return refused(format!(
            "--to must be a PostgreSQL URL (postgres://USER@HOST:PORT/DB), not {to:?}"
        ));
    }
    let source = &config.database;
    if !source.exists() {
        return refused(format!("no database at {}", display(source)));
    }
    if postgres::has_password(to) {
        eprintln!(
            "gatehouse: warning: the --to URL holds a password, which `ps` shows to every \
             local user: put it in PGPASSWORD instead"
        );
    }
    let _lock = crate::server_lock::ServerLock::acquire(source)
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    let target_shown = postgres::redact(to);
    // The source is checked before the target is touched: a refused source leaves even an
    // empty target without a schema.
    if let Err(e) = postgres::copy::check_source_file(source) {
        return refuse_copy(config, &target_shown, e);
    }
    let target = PgStore::open(to, &config.pg_options())?;
    let progress = std::cell::OnceCell::new();
    let copied = wait(postgres::copy::from_sqlite(
        source,
        &target,
        &mut |total| {
            let _ = progress.set(Progress::start(
                "db copy",
                total,
                Unit::Items("rows copied"),
            ));
        },
        &mut |n| {
            if let Some(p) = progress.get() {
                p.inc(n)
            }
        },
    ));
    let copied = match copied {
        Ok(c) => c,
        Err(e) => {
            drop(progress);
            return refuse_copy(config, &target_shown, e);
        }
    };
    if let Some(p) = progress.get() {
        p.finish();
    }
    drop(progress);
    let summary = copied
        .iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The new database's trail says where it came from.
    audit_admin(
        &Store::Postgres(target),
        "admin.db.copy",
        "ok",
        None,
        None,
        Some(format!("from {}: {summary}", display(source))),
    );
    for (table, n) in &copied {
        println!("{table}: {n}");
    }
    eprintln!(
        "copied {} to {target_shown}; start the servers with --database on it and the same \
         secret key",
        display(source)
    );
    Ok(())
}

/// A copy that did not happen: recorded in the source's trail (when its schema is this
/// binary's, so recording it upgrades nothing), then the reason.
fn refuse_copy(config: &Config, target: &str, e: postgres::copy::CopyError) -> Result<()> {
    let message = e.to_string();
    if source_is_current(&config.database)
        && let Ok(store) = Store::open(&config.database)
    {
        audit_admin(
            &store,
            "admin.db.copy",
            "refused",
            None,
            None,
            Some(format!("to {target}: {message}")),
        );
    }
    match e {
        postgres::copy::CopyError::Refused(m) => refused(m),
        postgres::copy::CopyError::Store(e) => Err(e.into()),
    }
}

fn source_is_current(path: &std::path::Path) -> bool {
    crate::store::sqlite::check(path).is_ok_and(|r| r.schema_version == r.latest_version)
}

fn report_check(r: &CheckReport) {
    if r.problems.is_empty() {
        println!("integrity: ok");
    } else {
        println!("integrity: {} problem(s)", r.problems.len());
        for p in &r.problems {
            println!("  {p}");
        }
    }
    let note = match r.schema_version.cmp(&r.latest_version) {
        std::cmp::Ordering::Equal => "current",
        std::cmp::Ordering::Less => "older: the server upgrades it at its next start",
        std::cmp::Ordering::Greater => "newer than this binary",
    };
    println!(
        "schema version: {} ({note}; this binary knows {})",
        r.schema_version, r.latest_version
    );
    println!("users: {}", r.users);
    println!("sessions: {}", r.sessions);
}
