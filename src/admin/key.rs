//! `gatehouse key rotate`: replaces the site's secret key. The new key is the one a server
//! would load now (`GATEHOUSE_SECRET_KEY`, else `--secret-key-file`, created when missing);
//! the old one comes from `GATEHOUSE_OLD_SECRET_KEY` (hex) or `--old-secret-key-file`. The
//! old key must be the one the database was used with (its fingerprint is stored); then
//! every sealed outbox body is re-encrypted and the new fingerprint recorded, in one
//! transaction ([`crate::store::keys`]).
//!
//! Servers load their key at start and keep it, so every server on the database must be
//! stopped first: on SQLite the server's lock is taken for the rotation's length (a running
//! server refuses it); on PostgreSQL the operator stops the instances, since one still running
//! with the old key would go on sealing mail that no new instance can open.

use super::{AdminError, Result, audit_admin, existing_store, refused, wait};
use crate::cli::{Config, KeyCommand};
use crate::mail::seal::Sealer;
use crate::security::secret::{self, SecretKey};
use crate::store::keys::Rotation;

/// The old key, in hex, when no file is given.
pub const OLD_KEY_ENV: &str = "GATEHOUSE_OLD_SECRET_KEY";

pub fn run(config: &Config, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Rotate {
            old_secret_key_file,
        } => rotate(config, old_secret_key_file.as_deref()),
    }
}

fn rotate(config: &Config, old_file: Option<&std::path::Path>) -> Result<()> {
    let old = old_key(old_file)?;
    let shared = config.database_is_url();
    // SQLite: no server may run meanwhile (it keeps the old key in memory).
    let _lock = if shared {
        None
    } else {
        if !config.database.exists() {
            return refused(format!("no database at {}", config.database.display()));
        }
        Some(
            crate::server_lock::ServerLock::acquire(&config.database)
                .map_err(|e| AdminError::Refused(e.to_string()))?,
        )
    };
    let env_key = std::env::var(secret::ENV_VAR)
        .ok()
        .filter(|v| !v.is_empty());
    if shared && env_key.is_none() && config.secret_key_file.is_none() {
        return refused(format!(
            "with PostgreSQL the new key must be given: set {} (hex) or --secret-key-file",
            secret::ENV_VAR
        ));
    }
    let store = existing_store(config)?;
    let key_path = config.secret_key_path();
    let created = env_key.is_none() && key_path.symlink_metadata().is_err();
    let new = SecretKey::load(env_key.as_deref(), &key_path)
        .map_err(|e| AdminError::Refused(format!("the new key: {e}")))?;
    if created {
        eprintln!(
            "created a new secret key in {} (mode 0600)",
            key_path.display()
        );
    }
    let (old_print, new_print) = (old.fingerprint(), new.fingerprint());
    let refuse = |why: String| {
        audit_admin(
            &store,
            "admin.key.rotate",
            "refused",
            None,
            None,
            Some(why.clone()),
        );
        refused(why)
    };
    if old_print == new_print {
        return refuse(format!(
            "the old key and the current key are the same (fingerprint {new_print}): give \
             the current key a new value first"
        ));
    }
    let (opener, sealer) = (Sealer::new(&old), Sealer::new(&new));
    let reseal = move |message_id: &str, body: &[u8]| {
        let plain = opener.open(message_id, body).ok()?;
        Some(sealer.seal(message_id, &plain))
    };
    let (old_totp, new_totp) = (
        crate::security::totp_seal::TotpSealer::new(&old),
        crate::security::totp_seal::TotpSealer::new(&new),
    );
    let reseal_secret =
        move |user_id: i64, sealed: &[u8]| old_totp.reseal(&new_totp, user_id, sealed);
    match wait(store.rotate_key(&old_print, &new_print, &reseal, &reseal_secret))? {
        Rotation::Rotated {
            resealed,
            unreadable,
            secrets,
        } => {
            let mut detail = format!(
                "fingerprint {old_print} -> {new_print}; {resealed} queued mail re-sealed; \
                 {secrets} authenticator secrets re-sealed"
            );
            if unreadable > 0 {
                detail.push_str(&format!(
                    "; {unreadable} unreadable under the old key, left for the sender to discard"
                ));
            }
            audit_admin(
                &store,
                "admin.key.rotate",
                "ok",
                None,
                None,
                Some(detail.clone()),
            );
            eprintln!("rotated the secret key: {detail}");
            eprintln!("start every server with the new key now; the old one opens nothing here");
            Ok(())
        }
        Rotation::NotTheOldKey {
            stored: Some(stored),
        } if stored == new_print => {
            eprintln!(
                "the database already uses the current key (fingerprint {new_print}): nothing \
                 to rotate"
            );
            Ok(())
        }
        Rotation::NotTheOldKey {
            stored: Some(stored),
        } => refuse(format!(
            "the old key given (fingerprint {old_print}) is not the one this database was used \
             with (fingerprint {stored}); nothing changed"
        )),
        Rotation::NotTheOldKey { stored: None } => refuse(
            "this database has no key fingerprint yet (no server has started on it), so \
             nothing is sealed under any key: start the server with the new key"
                .into(),
        ),
    }
}

/// The old key: `GATEHOUSE_OLD_SECRET_KEY` (hex) or the file, which must exist (a missing
/// file is a mistake, never a reason to make a key).
fn old_key(file: Option<&std::path::Path>) -> Result<SecretKey> {
    let env = std::env::var(OLD_KEY_ENV).ok().filter(|v| !v.is_empty());
    match (env, file) {
        (Some(_), Some(_)) => refused(format!(
            "give the old key once: {OLD_KEY_ENV} or --old-secret-key-file, not both"
        )),
        (Some(hex), None) => SecretKey::from_hex(&hex).map_err(|_| {
            AdminError::Refused(format!(
                "{OLD_KEY_ENV} must be hex encoding at least 32 bytes"
            ))
        }),
        (None, Some(path)) => {
            let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
                AdminError::Refused(format!("the old key file {}: {e}", path.display()))
            })?);
            SecretKey::from_bytes(&bytes).ok_or_else(|| {
                AdminError::Refused(format!(
                    "the old key file {} must hold at least 32 bytes",
                    path.display()
                ))
            })
        }
        (None, None) => refused(format!(
            "give the old key: {OLD_KEY_ENV} (hex) or --old-secret-key-file"
        )),
    }
}
