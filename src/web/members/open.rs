//! Opening a [`ProtectedPath`] beneath the members folder so that no link can lead out of it at
//! the moment of opening (docs/design.md "The members folder"): `openat2(2)` with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` relative to the folder's descriptor, so the kernel
//! resolves every component, links included, inside it. Kernels without `openat2` (before 5.6)
//! get a walk of `openat` calls with `O_NOFOLLOW`, which refuses every link. Nothing is checked
//! first and opened later.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::security::protected_path::ProtectedPath;

/// What a path names beneath the folder.
#[derive(Debug)]
pub enum Opened {
    /// A regular file, open for reading, with its metadata.
    File(File, std::fs::Metadata),
    /// A folder (asked for without its trailing slash).
    Folder,
}

/// Opens `dir` itself (the operator's trusted path) as a directory handle.
pub fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    Ok(OwnedFd::from(f))
}

const FLAGS: libc::c_int = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

/// `openat2(dirfd, rel, FLAGS, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
fn openat2_beneath(dirfd: &OwnedFd, rel: &CString) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = FLAGS as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid descriptor, a NUL-terminated path and an `open_how` of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// The fallback: one `openat` per component with `O_NOFOLLOW` (every link refused; the
/// components are already free of `..`, `/` and dot names).
pub(super) fn openat_walk(dirfd: &OwnedFd, components: &[&str]) -> io::Result<OwnedFd> {
    let mut current: Option<OwnedFd> = None;
    for (i, comp) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let name = CString::new(*comp).map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
        let flags = if last {
            FLAGS | libc::O_NOFOLLOW
        } else {
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
        };
        let at = current.as_ref().unwrap_or(dirfd).as_raw_fd();
        // SAFETY: a valid descriptor and a NUL-terminated name.
        let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us alone.
        current = Some(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    current.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
}

/// Opens `path` beneath `dir`. `Ok(None)` is "not found" in every form (missing, a link out,
/// not a regular file or folder, a file asked for as a folder); `Err` is an unexpected failure.
pub fn open(dir: &Path, path: &ProtectedPath) -> io::Result<Option<Opened>> {
    let dirfd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(e) if refused(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    open_in(&dirfd, path)
}

/// [`open`] beneath a folder already open.
pub fn open_in(dirfd: &OwnedFd, path: &ProtectedPath) -> io::Result<Option<Opened>> {
    let rel = path.relative();
    if rel.is_empty() {
        // The folder itself without a slash: only the prefix, handled by the caller.
        return Ok(Some(Opened::Folder));
    }
    let fd = match open_beneath(dirfd, &rel) {
        Ok(fd) => fd,
        Err(e) if refused(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if meta.is_dir() {
        // `rel` ends in `index.html` for a folder request, so this is `name` without its slash.
        return Ok((!path.is_folder()).then_some(Opened::Folder));
    }
    if !meta.is_file() {
        return Ok(None);
    }
    // O_NONBLOCK was there so that a FIFO could not hang the open; Linux ignores it for
    // regular files, whose reads block (or not, with RWF_NOWAIT) as the caller chooses.
    Ok(Some(Opened::File(file, meta)))
}

/// `openat2` beneath `dirfd`, or the `openat` walk where the kernel has no `openat2`.
pub(super) fn open_beneath(dirfd: &OwnedFd, rel: &str) -> io::Result<OwnedFd> {
    let c = CString::new(rel).map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
    match openat2_beneath(dirfd, &c) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let parts: Vec<&str> = rel.split('/').collect();
            openat_walk(dirfd, &parts)
        }
        other => other,
    }
}

/// Errors that mean "no such file here" rather than a server fault.
pub(super) fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ENOTDIR
                | libc::EXDEV
                | libc::ELOOP
                | libc::EACCES
                | libc::EPERM
                | libc::ENAMETOOLONG
                | libc::EISDIR
                | libc::ENXIO
                | libc::EAGAIN
        )
    )
}

#[cfg(test)]
#[path = "open_tests.rs"]
mod tests;

/// The first `len` bytes of `file` if the page cache holds them all, read without blocking
/// (`preadv2` with `RWF_NOWAIT`); `None` when reading would wait for the disk (or the kernel
/// cannot say), so the caller reads on its pool instead.
pub fn read_if_cached(file: &File, len: usize) -> io::Result<Option<Vec<u8>>> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let iov = libc::iovec {
                iov_base: buf[done..].as_mut_ptr().cast(),
                iov_len: len - done,
            };
            // SAFETY: one iovec over the unread part of `buf`, which outlives the call.
            let n = unsafe {
                libc::preadv2(
                    file.as_raw_fd(),
                    &iov,
                    1,
                    done as libc::off_t,
                    libc::RWF_NOWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(None),
                    Some(libc::EINTR) => continue,
                    _ => Err(e),
                };
            }
            if n == 0 {
                // The file shrank since its size was read: send what it holds now.
                buf.truncate(done);
                break;
            }
            done += n as usize;
        }
        Ok(Some(buf))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (file, len);
        Ok(None)
    }
}
