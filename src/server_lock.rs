//! One server per database. The lock and throttle tables live in the server's memory, so two
//! servers on one file would each allow their own guesses. A server therefore holds an
//! exclusive `flock(2)` on a file beside the database (`users.database.lock`) for its whole
//! life: the kernel releases it when the process ends, however it ends (a SIGKILL leaves no
//! stale lock), so the file itself is never deleted and its presence means nothing. Admin
//! commands do not take it: they are meant to run beside the server.
//!
//! `flock`, not SQLite's own `fcntl` locks on the database: those are per process and released
//! by any `close` of the file, and SQLite uses them for itself. `flock` locks belong to the
//! open file description, so a second [`ServerLock`] in the same process is refused too.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Held while it lives; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerLockError {
    #[error(
        "another Gatehouse server{} is running on the database {database} (it holds the lock \
         {lock}); stop it first, or give this one its own --database",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Held {
        database: String,
        lock: String,
        holder: Option<u32>,
    },
    #[error("lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ServerLock {
    /// The lock file of `database`: its path with `.lock` appended.
    pub fn path_for(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of `database` without waiting, or says who holds it.
    pub fn acquire(database: &Path) -> Result<Self, ServerLockError> {
        let path = Self::path_for(database);
        let io = |source| ServerLockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor `file` owns and keeps open; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(e));
            }
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(ServerLockError::Held {
                database: database.display().to_string(),
                lock: path.display().to_string(),
                holder: text.trim().parse().ok(),
            });
        }
        // Ours now: record who holds it, for the next one's message (and for `cat`).
        let written = (|| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        })();
        written.map_err(io)?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquire_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("users.database");
        let first = ServerLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("users.database.lock"));
        let mode = std::fs::metadata(first.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        match ServerLock::acquire(&db) {
            Err(e @ ServerLockError::Held { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("another Gatehouse server")
                        && msg.contains(&format!("(pid {})", std::process::id()))
                        && msg.contains("users.database.lock"),
                    "{msg}"
                );
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        let again = ServerLock::acquire(&db).unwrap();
        // Another database is another lock.
        ServerLock::acquire(&dir.path().join("other.database")).unwrap();
        drop(again);
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, ServerLock::path_for(&db)).unwrap();
        assert!(matches!(
            ServerLock::acquire(&db),
            Err(ServerLockError::Io { .. })
        ));
        assert!(!target.exists());
    }
}
