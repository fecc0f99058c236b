//! `--smtp-url` on any string: never panics, and whatever parses names a host and a port and
//! never shows its password when printed.
#![no_main]

use gatehouse::mail::SmtpUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Ok(u) = SmtpUrl::parse(raw) {
        assert!(u.port > 0);
        let shown = format!("{u} {u:?}");
        // A long password that is not also the host or user name must not show.
        // (Debug escapes the user name: twelve backslashes there show as twenty-four.)
        let elsewhere = |p: &str| {
            u.host.contains(p)
                || u.user.as_deref().is_some_and(|n| n.contains(p) || format!("{n:?}").contains(p))
        };
        if let Some(p) = u.password.as_deref().filter(|p| p.len() >= 16 && !elsewhere(p)) {
            assert!(!shown.contains(p), "{shown}");
        }
    }
});
