use super::*;
use std::os::unix::fs::symlink;

fn path(raw: &str) -> ProtectedPath {
    ProtectedPath::parse(raw).unwrap()
}

/// A folder `root/dir` with `index.html`, `a.txt`, `sub/index.html`, and `root/secret.txt`
/// outside it.
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("dir");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("index.html"), "home").unwrap();
    std::fs::write(dir.join("a.txt"), "a").unwrap();
    std::fs::write(dir.join("sub/index.html"), "sub").unwrap();
    std::fs::write(root.path().join("secret.txt"), "secret").unwrap();
    (root, dir)
}

fn content(dir: &Path, raw: &str) -> Option<String> {
    match open(dir, &path(raw)).unwrap()? {
        Opened::File(mut f, _) => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s).unwrap();
            Some(s)
        }
        Opened::Folder => Some("<folder>".into()),
    }
}

#[test]
fn opens_files_and_indexes_inside() {
    let (_root, dir) = setup();
    assert_eq!(content(&dir, "/").as_deref(), Some("home"));
    assert_eq!(content(&dir, "/a.txt").as_deref(), Some("a"));
    assert_eq!(content(&dir, "/sub/").as_deref(), Some("sub"));
    assert_eq!(content(&dir, "/sub").as_deref(), Some("<folder>"));
    assert_eq!(content(&dir, "/empty/"), None, "no listing");
    assert_eq!(content(&dir, "/missing"), None);
    assert_eq!(content(&dir, "/a.txt/"), None);
}

#[test]
fn links_inside_are_followed_links_out_refused() {
    let (root, dir) = setup();
    symlink("a.txt", dir.join("alias.txt")).unwrap();
    symlink(root.path().join("secret.txt"), dir.join("out.txt")).unwrap();
    symlink("../secret.txt", dir.join("rel-out.txt")).unwrap();
    symlink("/etc", dir.join("etc")).unwrap();
    symlink("/proc/self/root/etc/passwd", dir.join("magic")).unwrap();
    assert_eq!(content(&dir, "/alias.txt").as_deref(), Some("a"));
    for raw in ["/out.txt", "/rel-out.txt", "/etc/passwd", "/etc/", "/magic"] {
        assert_eq!(content(&dir, raw), None, "{raw}");
    }
}

#[test]
fn a_folder_swapped_for_a_link_out_is_refused_at_open() {
    let (root, dir) = setup();
    let p = path("/sub/index.html");
    assert_eq!(content(&dir, "/sub/index.html").as_deref(), Some("sub"));
    // Between one request and the next (or a check and an open), `sub` becomes a link out.
    let outside = root.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("index.html"), "stolen").unwrap();
    std::fs::remove_dir_all(dir.join("sub")).unwrap();
    symlink(&outside, dir.join("sub")).unwrap();
    assert!(open(&dir, &p).unwrap().is_none());
    assert_eq!(content(&dir, "/sub/"), None);
}

#[test]
fn the_fallback_walk_refuses_every_link() {
    let (root, dir) = setup();
    symlink(root.path().join("secret.txt"), dir.join("out.txt")).unwrap();
    symlink(root.path(), dir.join("up")).unwrap();
    let dirfd = open_dir(&dir).unwrap();
    assert!(openat_walk(&dirfd, &["a.txt"]).is_ok());
    assert!(openat_walk(&dirfd, &["sub", "index.html"]).is_ok());
    assert!(openat_walk(&dirfd, &["out.txt"]).is_err());
    assert!(openat_walk(&dirfd, &["up", "secret.txt"]).is_err());
}

#[test]
fn fifos_and_devices_are_not_served() {
    let (_root, dir) = setup();
    let fifo = CString::new(dir.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    assert_eq!(content(&dir, "/pipe"), None);
}

#[test]
fn a_cached_file_reads_without_blocking_and_a_shrunk_one_reads_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("page.html");
    std::fs::write(&p, b"hello, members").unwrap();
    let file = File::open(&p).unwrap();
    // Just written, so in the page cache: read here, not handed to the pool.
    let bytes = read_if_cached(&file, 14)
        .unwrap()
        .expect("a cached file reads at once");
    assert_eq!(bytes, b"hello, members");
    std::fs::write(&p, b"hi").unwrap();
    assert_eq!(read_if_cached(&file, 14).unwrap().unwrap(), b"hi");
}
