//! Files on disk: the umask tests run under, permission bits, the database's companion files.

use std::path::PathBuf;

/// Sets this test process's umask to the usual 022, which servers and commands started after it
/// inherit: tests of file modes then fail whenever the code leaves a mode to the umask, whatever
/// the umask the suite was started with. Every caller sets the same value, so tests running in
/// parallel do not disturb each other.
pub fn umask_022() {
    // SAFETY: umask(2) only sets the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o022);
    }
}

/// The permission bits of `path` (following symlinks).
pub fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `database` with `suffix` appended to its name (`-wal`, `-shm`, `.lock`).
pub fn beside(database: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
