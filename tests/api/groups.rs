//! `gatehouse user group add|remove NAME GROUP` and the groups `user show` prints
//! (docs/operations.md, "Groups"), run as the real binary on a test database.

use crate::both_backends;
use crate::common::*;

both_backends!(
    add_and_remove_are_idempotent_shown_sorted_and_audited,
    unknown_users_and_bad_group_names_are_refused,
    groups_go_with_a_deleted_user,
);

/// A fresh database of backend `b` holding `users` (each with a throwaway password).
fn database_with(b: Backend, users: &[&str]) -> BareDatabase {
    let db = BareDatabase::fresh(b);
    for u in users {
        let run = db.admin(&["user", "add", u], "some-long-password\n");
        assert_eq!(run.code, 0, "{run:?}");
    }
    db
}

fn ok(db: &BareDatabase, args: &[&str]) -> AdminRun {
    let run = db.admin(args, "");
    assert_eq!(run.code, 0, "gatehouse {args:?}: {run:?}");
    run
}

/// The "groups:" line of `user show NAME`.
fn groups_line(db: &BareDatabase, name: &str) -> String {
    let show = ok(db, &["user", "show", name]);
    show.stdout
        .lines()
        .find(|l| l.starts_with("groups: "))
        .unwrap_or_else(|| panic!("no groups line: {show:?}"))
        .to_owned()
}

async fn add_and_remove_are_idempotent_shown_sorted_and_audited(b: Backend) {
    let db = database_with(b, &["gina", "hugo"]);
    assert_eq!(groups_line(&db, "gina"), "groups: none");

    let run = ok(&db, &["user", "group", "add", "gina", "ops"]);
    assert!(run.stderr.contains("added gina to group ops"), "{run:?}");
    let run = ok(&db, &["user", "group", "add", "Gina", "ops"]);
    assert!(
        run.stderr.contains("gina was already in group ops"),
        "{run:?}"
    );
    ok(&db, &["user", "group", "add", "gina", "admin"]);
    ok(&db, &["user", "group", "add", "gina", "z-team_2"]);
    assert_eq!(groups_line(&db, "gina"), "groups: admin, ops, z-team_2");
    assert_eq!(groups_line(&db, "hugo"), "groups: none", "only gina's");

    let run = ok(&db, &["user", "group", "remove", "gina", "ops"]);
    assert!(
        run.stderr.contains("removed gina from group ops"),
        "{run:?}"
    );
    let run = ok(&db, &["user", "group", "remove", "gina", "ops"]);
    assert!(run.stderr.contains("gina was not in group ops"), "{run:?}");
    assert_eq!(groups_line(&db, "gina"), "groups: admin, z-team_2");

    let audit = ok(&db, &["audit", "--user", "gina"]).stdout;
    for (event, detail) in [
        ("admin.user.group.add", "group ops: added"),
        ("admin.user.group.add", "group ops: already a member"),
        ("admin.user.group.add", "group admin: added"),
        ("admin.user.group.remove", "group ops: removed"),
        ("admin.user.group.remove", "group ops: not a member"),
    ] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("\t{event}\tok\t")) && l.contains(detail)),
            "{event} {detail}: {audit}"
        );
    }
}

async fn unknown_users_and_bad_group_names_are_refused(b: Backend) {
    let db = database_with(b, &["ivan"]);
    for verb in ["add", "remove"] {
        let run = db.admin(&["user", "group", verb, "nobody", "ops"], "");
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("no user nobody"), "{run:?}");
    }
    let audit = ok(&db, &["audit", "--user", "nobody"]).stdout;
    assert!(audit.contains("admin.user.group.add\trefused"), "{audit}");
    assert!(
        audit.contains("admin.user.group.remove\trefused"),
        "{audit}"
    );

    let too_long = "a".repeat(33);
    for bad in ["Admin", "a b", too_long.as_str(), "", "ops,dev"] {
        for verb in ["add", "remove"] {
            let run = db.admin(&["user", "group", verb, "ivan", bad], "");
            assert_eq!(run.code, 1, "{bad:?}: {run:?}");
            assert!(
                run.stderr
                    .contains(&format!("{bad:?} is not a valid group name: ")),
                "{bad:?}: {run:?}"
            );
        }
    }
    // 32 characters is the limit, not past it.
    ok(&db, &["user", "group", "add", "ivan", &"a".repeat(32)]);
    assert_eq!(
        groups_line(&db, "ivan"),
        format!("groups: {}", "a".repeat(32))
    );

    // Usage errors are clap's: exit 2.
    assert_eq!(db.admin(&["user", "group", "add", "ivan"], "").code, 2);
    assert_eq!(
        db.admin(&["user", "group", "join", "ivan", "x"], "").code,
        2
    );
}

async fn groups_go_with_a_deleted_user(b: Backend) {
    let db = database_with(b, &["jane"]);
    ok(&db, &["user", "group", "add", "jane", "ops"]);
    ok(&db, &["user", "delete", "jane"]);
    assert_eq!(db.query_i64("SELECT count(*) FROM user_groups"), 0);
    // The name is retired: no new jane can inherit anything.
    let run = db.admin(&["user", "add", "jane"], "another-long-password\n");
    assert_ne!(run.code, 0, "{run:?}");
}

#[test]
fn a_database_from_before_groups_gets_the_table() {
    let schema = gatehouse::store::sqlite::SCHEMA;
    let before = &schema[..schema.find("-- @version 4").expect("the groups section")];
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.database");
    let old = rusqlite::Connection::open(&db).unwrap();
    old.execute_batch(before).unwrap();
    old.execute(
        "INSERT INTO users (username, password_hash, active, created_at, updated_at,
                            password_changed_at) VALUES ('kate', '$argon2id$x', 1, 1, 1, 1)",
        [],
    )
    .unwrap();
    let v: i64 = old
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 3);
    drop(old);

    let run = admin_at(&db, &["user", "group", "add", "kate", "ops"], "");
    assert_eq!(run.code, 0, "{run:?}");
    let show = admin_at(&db, &["user", "show", "kate"], "");
    assert!(show.stdout.lines().any(|l| l == "groups: ops"), "{show:?}");
    let v: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 4, "upgraded to {v}");
}
