//! `gatehouse import-seed PATH`: brings over the users of the original FastAPI demo, whose
//! `users.password_hash` is `'$1$' + base64(SHA-512(username ‖ password)) + '$'`: the
//! docs/behaviour.md §2 digest itself. Each stored digest is wrapped in Argon2id exactly as a
//! sign-up would hash it, so those users sign in with their old passwords. The demo's file held
//! password equivalents: imported accounts are only as safe as every copy of that file (see
//! docs/operations.md).
//!
//! Hashing happens outside any write transaction, on `--kdf-threads` threads, and each batch
//! is committed in one short transaction, so a running server never waits on the import for
//! longer than one batch's inserts. Hashing is most of the time (minutes for thousands of
//! users at the default cost): its progress goes to stderr ([`crate::progress`]).

use std::path::Path;

use super::{Result, audit_admin, display, hash_all, refused, wait};
use crate::cli::Config;
use crate::clock::now_ms;
use crate::domain::Username;
use crate::progress::{Progress, Unit};
use crate::security::digest::PasswordDigest;
use crate::security::password::Kdf;
use crate::store::{ImportOutcome, Store};

const BATCH: usize = 32;

/// A demo row that can be imported: canonical name and its digest.
struct Seed {
    username: Username,
    digest: PasswordDigest,
}

/// Why a demo row is skipped, or the row ready to import.
fn parse_row(raw_name: &str, stored: &str) -> std::result::Result<Seed, String> {
    let username = match Username::parse(raw_name) {
        Ok(u) if u.as_str() == raw_name => u,
        Ok(u) => {
            return Err(format!(
                "not canonical (it would be {:?}, whose digest differs)",
                u.as_str()
            ));
        }
        Err(m) => return Err(format!("not a valid username: {m}")),
    };
    let wire = stored
        .strip_prefix("$1$")
        .and_then(|s| s.strip_suffix('$'))
        .ok_or("password_hash is not '$1$' + base64 + '$'")?;
    let digest = PasswordDigest::from_wire(wire).map_err(|e| format!("password_hash: {e}"))?;
    Ok(Seed { username, digest })
}

fn read_seed(path: &Path) -> Result<Vec<(String, String)>> {
    use crate::store::sqlite::seed::{SeedError, read_users};
    if !path.exists() {
        return refused(format!("no file at {}", display(path)));
    }
    read_users(path).or_else(|e| match e {
        SeedError::NoUsersTable(e) => refused(format!(
            "{} has no users(id, username, password_hash) table: {e}",
            display(path)
        )),
        SeedError::Open(e) | SeedError::Rows(e) => refused(format!("{}: {e}", display(path))),
    })
}

pub fn run(config: &Config, path: &Path) -> Result<()> {
    let rows = read_seed(path)?;
    let store = Store::open_with(&config.database, &config.pg_options())?;
    let kdf = Kdf::new(config.kdf_params())?;
    let (mut imported, mut existed, mut skipped) = (0usize, 0usize, 0usize);
    let mut seeds = Vec::new();
    for (name, stored) in &rows {
        match parse_row(name, stored) {
            Ok(seed) => seeds.push(seed),
            Err(why) => {
                skipped += 1;
                eprintln!("skipped {name:?}: {why}");
            }
        }
    }
    let threads = config.kdf_threads.max(1);
    let progress = Progress::start(
        "import-seed",
        seeds.len() as u64,
        Unit::Items("users hashed"),
    );
    for batch in seeds.chunks(BATCH) {
        let digests: Vec<&PasswordDigest> = batch.iter().map(|s| &s.digest).collect();
        let hashed: Vec<(Username, String)> = batch
            .iter()
            .map(|s| s.username.clone())
            .zip(hash_all(&kdf, &digests, threads, &progress)?)
            .collect();
        for ((name, _), outcome) in hashed
            .iter()
            .zip(wait(store.import_users(&hashed, now_ms()))?)
        {
            match outcome {
                ImportOutcome::Imported => imported += 1,
                ImportOutcome::Exists => {
                    existed += 1;
                    progress.println(&format!(
                        "skipped {:?}: a user with that name exists",
                        name.as_str()
                    ));
                }
            }
        }
    }
    progress.finish();
    let summary = format!(
        "from {}: {imported} imported, {existed} already existed, {skipped} skipped",
        display(path)
    );
    audit_admin(
        &store,
        "admin.import_seed",
        "ok",
        None,
        None,
        Some(summary.clone()),
    );
    eprintln!("{summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_rows_parse_or_say_why_not() {
        let digest = PasswordDigest::compute("alice", "correct horse battery staple");
        let ok = parse_row("alice", &format!("$1${}$", digest.to_wire())).unwrap();
        assert_eq!(ok.username.as_str(), "alice");
        assert_eq!(ok.digest.as_bytes(), digest.as_bytes());
        let wire = digest.to_wire();
        assert!(
            parse_row("Alice", &format!("$1${wire}$"))
                .err()
                .expect("refused")
                .contains("canonical")
        );
        assert!(parse_row(" alice", &format!("$1${wire}$")).is_err());
        assert!(parse_row("a", &format!("$1${wire}$")).is_err());
        assert!(parse_row("alice", &wire).is_err());
        assert!(parse_row("alice", "$1$short$").is_err());
        assert!(parse_row("alice", &format!("$2${wire}$")).is_err());
        assert!(parse_row("alice", "").is_err());
    }
}
