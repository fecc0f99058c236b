//! Forward-auth `rd` return addresses on any string: never panics, and whatever is accepted is
//! an absolute https URL on an allowed host, without userinfo, whose emitted text is plain ASCII
//! and re-parses to itself (what is signed is what is emitted).
#![no_main]

use gatehouse::security::forward::{ForwardDomains, ForwardPolicy, ReturnUrl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let policy = ForwardPolicy {
        domains: ForwardDomains::parse(&["example.org"]).unwrap(),
        allow_http: false,
    };
    if let Some(rd) = ReturnUrl::parse(raw, &policy) {
        let text = rd.as_str();
        assert!(text.starts_with("https://"), "{raw:?} -> {text}");
        assert!(text.is_ascii() && !text.contains(['\\', ' ', '\t', '\n', '\r']));
        let again = url::Url::parse(text).unwrap();
        assert_eq!(again.as_str(), text);
        assert!(again.username().is_empty() && again.password().is_none());
        let host = again.host_str().unwrap();
        assert!(host == "example.org" || host.ends_with(".example.org"), "{raw:?} -> {host}");
    }
});
