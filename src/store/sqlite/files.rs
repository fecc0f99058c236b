//! Who may read the database's files: the owner only. Gatehouse creates the database file
//! itself with mode 0600 before SQLite opens it, because SQLite creates its `-wal`, `-shm` and
//! `-journal` files with the database file's mode (it `fchmod`s them past the umask), so one
//! private file makes them all private. An existing file that others may read keeps its mode
//! (changing it behind the owner's back could break their set-up) but is reported at start.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner read and write, nothing for group and others.
const PRIVATE: u32 = 0o600;

/// Creates `path` empty with mode 0600 whatever the umask, unless something is there already.
/// Returns whether it did. Two processes racing here both succeed: one creates, one finds it.
pub(crate) fn create_private_if_missing(path: &Path) -> io::Result<bool> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE)
        .open(path)
    {
        Ok(file) => {
            // The umask may have taken more than group and other bits (e.g. 0277).
            file.set_permissions(std::fs::Permissions::from_mode(PRIVATE))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates a new file at `path` with mode 0600 whatever the umask, refusing anything already
/// there: a file, a symbolic link, even a dangling one (`O_EXCL` with `O_NOFOLLOW`, so nothing
/// is ever written through a link someone planted).
pub(crate) fn create_private_new(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE))?;
    Ok(file)
}

/// Whether an open or create error means "something is at that path already".
pub(crate) fn is_taken(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ELOOP)
}

/// The database file and the SQLite files beside it that exist.
fn with_companions(database: &Path) -> Vec<PathBuf> {
    let mut all = vec![database.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        all.push(PathBuf::from(name));
    }
    all.into_iter().filter(|p| p.exists()).collect()
}

/// Files of the database that group or others may access, with their modes.
pub(crate) fn shared_files(database: &Path) -> Vec<(PathBuf, u32)> {
    with_companions(database)
        .into_iter()
        .filter_map(|p| {
            let mode = std::fs::metadata(&p).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some((p, mode))
        })
        .collect()
}

/// Logs a warning for each file of the database that group or others may access.
pub(crate) fn warn_if_shared(database: &Path) {
    for (path, mode) in shared_files(database) {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:04o}"),
            "{} has mode {mode:04o}: other local users may read its password hashes and \
             emails; run `chmod 600 {}`",
            path.display(),
            path.display(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_an_existing_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        assert!(create_private_if_missing(&p).unwrap());
        assert_eq!(mode(&p), 0o600);
        assert!(shared_files(&p).is_empty());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!create_private_if_missing(&p).unwrap());
        assert_eq!(mode(&p), 0o644, "an existing file keeps its mode");
        assert_eq!(shared_files(&p), vec![(p.clone(), 0o644)]);
    }

    #[test]
    fn sqlite_gives_its_wal_and_shm_files_the_database_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        create_private_if_missing(&p).unwrap();
        let c = rusqlite::Connection::open(&p).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for suffix in ["-wal", "-shm"] {
            let companion = dir.path().join(format!("db{suffix}"));
            assert_eq!(mode(&companion), 0o600, "{suffix}");
        }
        // Copied, not derived through the umask: group write survives a usual umask (022,
        // 077) because SQLite `fchmod`s the new file to the database file's mode.
        let shared = dir.path().join("shared");
        File::create(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o660)).unwrap();
        let c = rusqlite::Connection::open(&shared).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch("CREATE TABLE t (x);").unwrap();
        assert_eq!(mode(&dir.path().join("shared-wal")), 0o660);
        assert_eq!(mode(&dir.path().join("shared-shm")), 0o660);
    }

    #[test]
    fn a_new_file_refuses_files_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("copy");
        create_private_new(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        let again = create_private_new(&p).unwrap_err();
        assert!(is_taken(&again), "{again}");
        let link = dir.path().join("link");
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = create_private_new(&link).unwrap_err();
        assert!(is_taken(&dangling), "{dangling}");
        assert!(!target.exists());
    }
}
