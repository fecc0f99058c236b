use super::*;
use proptest::prelude::*;

#[test]
fn prefixes_clear_of_gatehouse_routes() {
    for good in [
        "/members",
        "/files/private",
        "/sign",
        "/accounts",
        "/m.v2_~x",
    ] {
        assert!(ProtectPrefix::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "/",
        "members",
        "/members/",
        "//members",
        "/a//b",
        "/./x",
        "/a/..",
        "/sign-in",
        "/sign-up/x",
        "/account",
        "/account/files",
        "/api",
        "/static",
        "/auth",
        "/auth/x",
        "/healthz",
        "/welcome",
        "/favicon.ico",
        "/robots.txt",
        "/sign-out",
        "/a b",
        "/a%20b",
        "/caf\u{e9}",
    ] {
        assert!(ProtectPrefix::parse(bad).is_err(), "{bad:?}");
    }
    let e = ProtectPrefix::parse("/account/x").unwrap_err();
    assert!(e.contains("overlaps") && e.contains("/account"), "{e}");
}

#[test]
fn good_paths_name_files_inside() {
    for (raw, rel, folder) in [
        ("/", "index.html", true),
        ("/a.html", "a.html", false),
        ("/docs/", "docs/index.html", true),
        ("/docs", "docs", false),
        ("/docs/guide.pdf", "docs/guide.pdf", false),
        ("/my%20file.txt", "my file.txt", false),
        (
            "/caf%C3%A9/%E6%97%A5%E6%9C%AC.html",
            "café/日本.html",
            false,
        ),
        ("/café.html", "café.html", false),
        ("/a..b", "a..b", false),
        ("/x.", "x.", false),
        ("/%41", "A", false),
    ] {
        let p = ProtectedPath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(p.relative(), rel, "{raw}");
        assert_eq!(p.is_folder(), folder, "{raw}");
    }
}

#[test]
fn adversarial_paths_are_refused() {
    for raw in [
        "",
        "x",
        "/..",
        "/../",
        "/../etc/passwd",
        "/a/../../b",
        "/.",
        "/./a",
        "/%2e%2e",
        "/%2E%2E/x",
        "/%2e./x",
        "/.%2e/x",
        "/%2E.",
        "/..%2f..%2fetc%2fpasswd",
        "/a%2f..%2f..",
        "/..%5c..%5cx",
        "/%5c",
        "/a\\b",
        "/..\\x",
        "/%252e%252e/x",
        "/%252e%252e%252fx",
        "/%25",
        "/a%00b",
        "/a\0b",
        "/%00",
        "/.htaccess",
        "/.git/config",
        "/a/.env",
        "/%2egit/x",
        "//etc/passwd",
        "/a//b",
        "/a/%2F/b",
        "/%",
        "/%2",
        "/%zz",
        "/%C3",
        "/%FF",
        "/a%0a",
        "/%E2%80%A8",
        "/\u{7f}",
        "/a/%2e%2e%2f",
    ] {
        assert!(ProtectedPath::parse(raw).is_err(), "{raw:?}");
    }
}

proptest! {
    /// Any request path either maps to plain names inside the folder or is refused.
    #[test]
    fn any_path_maps_inside_or_is_refused(raw in "(/|[a-z.%25\\\\]|%2[eEfF5]|%5[cC]|%00|\\.\\.){0,12}") {
        if let Ok(p) = ProtectedPath::parse(&raw) {
            let rel = std::path::Path::new(&p.relative()).to_path_buf();
            prop_assert!(rel.is_relative());
            for c in rel.components() {
                prop_assert!(matches!(c, std::path::Component::Normal(_)), "{raw:?} -> {rel:?}");
            }
            for s in p.segments() {
                prop_assert!(!s.is_empty() && !s.starts_with('.'));
                prop_assert!(!s.contains(['/', '\\', '%', '\0']));
            }
        }
    }

    #[test]
    fn any_string_never_panics(raw in "\\PC{0,40}") {
        let _ = ProtectedPath::parse(&raw);
    }
}
