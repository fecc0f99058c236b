//! `gatehouse db check` and `gatehouse db backup PATH`.

use super::{Result, audit_admin, display, existing_store, refused};
use crate::cli::{Config, DbCommand};
use crate::progress::{Progress, Unit};

pub fn run(config: &Config, command: DbCommand) -> Result<()> {
    match command {
        DbCommand::Check => {
            if !config.database.exists() {
                return refused(format!("no database at {}", display(&config.database)));
            }
            let report = crate::store::sqlite::check(&config.database)?;
            report_check(&report);
            if !report.problems.is_empty() {
                return refused(format!(
                    "{}: integrity check failed",
                    display(&config.database)
                ));
            }
            if report.schema_version > report.latest_version {
                return refused("the database is newer than this gatehouse: upgrade the binary");
            }
            // Only a current schema is opened for writing: a check never upgrades the file.
            if report.schema_version == report.latest_version {
                audit_admin(
                    &existing_store(config)?,
                    "admin.db.check",
                    "ok",
                    None,
                    None,
                    None,
                );
            }
            Ok(())
        }
        DbCommand::Backup { path } => {
            let store = existing_store(config)?;
            // `symlink_metadata`: a dangling symlink is something there too.
            if path.symlink_metadata().is_ok() {
                return Err(crate::store::StoreError::Exists(display(&path)).into());
            }
            // The total is known at the first step: the size of the snapshot.
            let mut progress: Option<Progress> = None;
            let result = store.backup_to(&path, &mut |done, total| {
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
            let report = crate::store::sqlite::check(&path)?;
            if !report.problems.is_empty() {
                return refused(format!("the copy at {} failed its check", display(&path)));
            }
            audit_admin(
                &store,
                "admin.db.backup",
                "ok",
                None,
                None,
                Some(format!("to {}", display(&path))),
            );
            eprintln!(
                "backed up {} users and {} sessions to {}",
                report.users,
                report.sessions,
                display(&path)
            );
            Ok(())
        }
    }
}

fn report_check(r: &crate::store::CheckReport) {
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
