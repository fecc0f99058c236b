//! Members-folder request paths on any string: never panics, and whatever parses names only
//! plain segments (no empty, dot, `/`, `\`, `%` or NUL), so joining them cannot leave the folder.
#![no_main]

use gatehouse::security::protected_path::ProtectedPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Ok(p) = ProtectedPath::parse(raw) {
        for s in p.segments() {
            assert!(!s.is_empty() && !s.starts_with('.'), "{raw:?} -> {s:?}");
            assert!(!s.contains(['/', '\\', '%', '\0']), "{raw:?} -> {s:?}");
        }
        let rel = p.relative();
        assert!(!rel.starts_with('/') && !rel.split('/').any(|c| c == ".." || c == "."));
    }
});
