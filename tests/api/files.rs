//! Who may read Gatehouse's files (issue 10 §1, §9): the database, its `-wal` and `-shm`, the
//! lock file and backups are the owner's only whatever the umask; an existing database others
//! may read is reported, not changed; a backup never writes through a symlink or over a file.

use crate::common::*;

#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_private_under_umask_022() {
    umask_022();
    let app = TestApp::spawn(&[]);
    // A write, so the -wal and -shm files exist and hold data.
    sign_up(&app, &app.client(), "private", "private-password").await;
    let db = app.database();
    for path in [
        db.clone(),
        beside(&db, "-wal"),
        beside(&db, "-shm"),
        beside(&db, ".lock"),
    ] {
        assert_eq!(file_mode(&path), 0o600, "{}", path.display());
    }
    assert!(
        !app.log().contains("chmod 600"),
        "no warning for a private database:\n{}",
        app.log()
    );
}

#[tokio::test]
async fn a_backup_is_private_under_umask_022() {
    umask_022();
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "copied", "copied-password").await;
    let copy = app.dir.path().join("copy.database");
    app.admin_ok(&["db", "backup", copy.to_str().unwrap()], "");
    assert_eq!(file_mode(&copy), 0o600);
    let name: String = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT username FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "copied");
}

#[tokio::test]
async fn an_existing_database_others_can_read_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.database");
    admin_at(&db, &["user", "add", "olduser"], "olduser-password\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let app = TestApp::spawn_in(dir, &[]);
    let log = app.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("has mode 0644"))
        .unwrap_or_else(|| panic!("no warning about the mode:\n{log}"));
    assert!(
        warning.contains(&db.display().to_string())
            && warning.contains(&format!("chmod 600 {}", db.display())),
        "{warning}"
    );
    assert_eq!(
        file_mode(&db),
        0o644,
        "an existing file's mode is the owner's call"
    );
    // The server runs anyway.
    assert_eq!(
        sign_in(&app, &app.client(), "olduser", "olduser-password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_backup_refuses_a_dangling_symlink_an_existing_file_and_a_link_to_one() {
    let app = TestApp::spawn(&[]);
    sign_up(&app, &app.client(), "source", "source-password").await;
    let dir = app.dir.path();

    let dangling = dir.join("dangling.database");
    let target = dir.join("target-of-the-link.database");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    let run = app.admin(&["db", "backup", dangling.to_str().unwrap()], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("exists"), "{run:?}");
    assert!(!target.exists(), "nothing written through the link");
    assert!(dangling.symlink_metadata().unwrap().is_symlink());

    let existing = dir.join("existing.database");
    std::fs::write(&existing, b"keep me").unwrap();
    let run = app.admin(&["db", "backup", existing.to_str().unwrap()], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("{} exists", existing.display())),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");

    let link = dir.join("link.database");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    let run = app.admin(&["db", "backup", link.to_str().unwrap()], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
}
