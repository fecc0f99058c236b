//! The `rd` rules against tables of known open-redirect spellings.

use super::*;
use proptest::prelude::*;

fn key() -> SecretKey {
    SecretKey::from_bytes(&[7u8; 32]).unwrap()
}

fn policy(domains: &[&str]) -> ForwardPolicy {
    ForwardPolicy {
        domains: ForwardDomains::parse(domains).unwrap(),
        allow_http: false,
    }
}

/// Signs `raw` as an attacker holding a valid signature would have it: the tests below check
/// that the URL rules hold even for signed text.
fn forged(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(key().mac(LABEL, raw.as_bytes()))
}

#[test]
fn domains_parse_and_normalise() {
    let d = ForwardDomains::parse(&["Example.ORG", ".apps.example.net", " ", "bücher.example"])
        .unwrap();
    assert_eq!(
        d.entries(),
        ["example.org", "apps.example.net", "xn--bcher-kva.example"]
    );
    for bad in [
        "127.0.0.1",
        "[::1]",
        "exa mple.org",
        "example.org/x",
        "a..b",
        "example.org.",
    ] {
        assert!(ForwardDomains::parse(&[bad]).is_err(), "{bad}");
    }
}

#[test]
fn hosts_match_only_on_a_label_boundary() {
    let d = ForwardDomains::parse(&["example.org"]).unwrap();
    assert!(d.allows("example.org"));
    assert!(d.allows("app.example.org"));
    assert!(d.allows("a.b.example.org"));
    for bad in [
        "badexample.org",
        "example.org.evil.com",
        "example.orgx",
        "xexample.org",
        "org",
        "",
        "evil.com",
    ] {
        assert!(!d.allows(bad), "{bad}");
    }
}

#[test]
fn good_return_addresses_are_followed_in_canonical_form() {
    let p = policy(&["example.org", "testserver"]);
    for (raw, emitted) in [
        ("https://app.example.org/", "https://app.example.org/"),
        ("https://example.org/x?y=1#z", "https://example.org/x?y=1#z"),
        ("https://app.example.org", "https://app.example.org/"),
        (
            "HTTPS://APP.Example.org/Path",
            "https://app.example.org/Path",
        ),
        ("https://app.example.org:443/a", "https://app.example.org/a"),
        (
            "https://app.example.org:8443/a",
            "https://app.example.org:8443/a",
        ),
        ("https://testserver/", "https://testserver/"),
        (
            "https://testserver/confirm?email=me@example.com",
            "https://testserver/confirm?email=me@example.com",
        ),
        (
            "https://app.example.org/caf%C3%A9",
            "https://app.example.org/caf%C3%A9",
        ),
        (
            "https://app.example.org/café",
            "https://app.example.org/caf%C3%A9",
        ),
        (
            "https://app.example.org/a/../b",
            "https://app.example.org/b",
        ),
    ] {
        let rd = ReturnUrl::parse(raw, &p).unwrap_or_else(|| panic!("{raw} refused"));
        assert_eq!(rd.as_str(), emitted, "{raw}");
        assert!(rd.as_str().is_ascii());
        // What is signed is what is emitted: the emitted form verifies as itself.
        let sig = sign(&key(), &rd);
        assert_eq!(verify(&key(), &p, rd.as_str(), &sig), Some(rd.clone()));
    }
}

/// Django's `url_has_allowed_host_and_scheme` bad URLs (allowed host `testserver`), and its
/// relative "good" ones, which an absolute-only `rd` refuses too.
#[test]
fn django_bad_urls_are_refused() {
    let p = policy(&["testserver"]);
    for raw in [
        "http://example.com",
        "http:///example.com",
        "https://example.com",
        "ftp://example.com",
        r"\\example.com",
        r"\\\example.com",
        r"/\\/example.com",
        r"\\//example.com",
        r"/\/example.com",
        r"\/example.com",
        r"/\example.com",
        r"http:/\//example.com",
        r"http:\/example.com",
        r"http:/\example.com",
        "javascript:alert(\"XSS\")",
        "\njavascript:alert(x)",
        "\x08//example.com",
        r"http://otherserver\@example.com",
        r"http:\\testserver\@example.com",
        r"http://testserver\me:pass@example.com",
        r"http://testserver\@example.com",
        r"http:\\testserver\confirm\me@example.com",
        "https://testserver\\@example.com",
        "http:999999999",
        "ftp:9999999999",
        "\n",
        "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
        "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
        // Relative URLs, good for Django's `next`, are never an `rd`.
        "/view/?param=https://example.com",
        "//testserver/",
        "/url%20with%20spaces/",
        "path/http:2222222222",
        // Plain http while the public URL is https.
        "http://testserver/",
    ] {
        assert!(ReturnUrl::parse(raw, &p).is_none(), "{raw:?}");
        assert!(verify(&key(), &p, raw, &forged(raw)).is_none(), "{raw:?}");
    }
}

/// oauth2-proxy's `rd` advisories and their variants: whitespace and control characters the
/// parser drops (CVE-2020-5233), backslashes (CVE-2020-4037), look-alike suffixes
/// (CVE-2021-21291), userinfo, and hosts that decode into something else.
#[test]
fn oauth2_proxy_style_bypasses_are_refused() {
    let p = policy(&["example.org"]);
    for raw in [
        "/\t/evil.com",
        "https://evil.com/\t.example.org",
        "https://app.example.org\t@evil.com",
        "https://app.example.org\n.evil.com",
        "https://app.example.org\r\nSet-Cookie: x=1",
        "https://app.example.org/ x",
        "https://evil.com\\@app.example.org",
        "https://app.example.org\\.evil.com",
        "/\\evil.com",
        "https:/\\evil.com",
        "https://badexample.org/",
        "https://example.org.evil.com/",
        "https://evil.com/?app.example.org",
        "https://evil.com/#.example.org",
        "https://evil.com/.example.org",
        "https://user:pass@app.example.org/",
        "https://user@app.example.org/",
        "https://app.example.org@evil.com/",
        "https://evil.com:443@app.example.org/",
        "https://app.example.org%2eevil.com/",
        "https://app.example.org%40evil.com/",
        "https://evil.com%00.example.org/",
        "https://app.example.org\u{3002}evil.com/",
        "https://app.example.org\u{200b}.evil.com/",
        "//app.example.org/",
        "///app.example.org/",
        "javascript:alert(1)//app.example.org",
        "data:text/html,<script>alert(1)</script>",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://2130706433/",
        "ftp://app.example.org/",
        "ws://app.example.org/",
        "https://",
        "",
        " https://app.example.org/",
        "https://app.example.org/\u{85}",
    ] {
        assert!(ReturnUrl::parse(raw, &p).is_none(), "{raw:?}");
        assert!(verify(&key(), &p, raw, &forged(raw)).is_none(), "{raw:?}");
    }
    let long = format!("https://app.example.org/{}", "a".repeat(2048));
    assert!(ReturnUrl::parse(&long, &p).is_none());
}

#[test]
fn http_only_when_allowed_and_nothing_without_domains() {
    let mut p = policy(&["example.org"]);
    assert!(ReturnUrl::parse("http://app.example.org/", &p).is_none());
    p.allow_http = true;
    assert!(ReturnUrl::parse("http://app.example.org/", &p).is_some());
    let none = ForwardPolicy::default();
    assert!(ReturnUrl::parse("https://app.example.org/", &none).is_none());
    assert!(
        verify(
            &key(),
            &none,
            "https://app.example.org/",
            &forged("https://app.example.org/")
        )
        .is_none()
    );
}

#[test]
fn signatures_bind_the_text_and_the_label() {
    let p = policy(&["example.org"]);
    let rd = ReturnUrl::parse("https://app.example.org/a", &p).unwrap();
    let sig = sign(&key(), &rd);
    assert!(verify(&key(), &p, "https://app.example.org/a", &sig).is_some());
    assert!(verify(&key(), &p, "https://app.example.org/b", &sig).is_none());
    assert!(verify(&key(), &p, "https://app.example.org/a", &sig[1..]).is_none());
    assert!(verify(&key(), &p, "https://app.example.org/a", "").is_none());
    let other = SecretKey::from_bytes(&[8u8; 32]).unwrap();
    assert!(verify(&other, &p, "https://app.example.org/a", &sig).is_none());
    // A `next` signature (label "redirect:") or a CSRF one cannot stand in for `rd`'s.
    for label in ["redirect:", "csrf:"] {
        let tag = URL_SAFE_NO_PAD.encode(key().mac(label, b"https://app.example.org/a"));
        assert!(verify(&key(), &p, "https://app.example.org/a", &tag).is_none());
    }
}

#[test]
fn sign_in_url_carries_the_signed_address() {
    let p = policy(&["example.org"]);
    let rd = ReturnUrl::parse("https://app.example.org/x?a=1&b=2", &p).unwrap();
    let url = sign_in_url("https://auth.example.org/", &key(), Some(&rd));
    let (base, query) = url.split_once('?').unwrap();
    assert_eq!(base, "https://auth.example.org/sign-in");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(pairs[0], ("rd".into(), rd.as_str().into()));
    assert!(verify(&key(), &p, &pairs[0].1, &pairs[1].1).is_some());
    assert_eq!(
        sign_in_url("https://auth.example.org", &key(), None),
        "https://auth.example.org/sign-in"
    );
}

proptest! {
    /// Whatever the text, a followed address is absolute https, on an allowed host, without
    /// userinfo, and emitted as plain ASCII without whitespace or backslashes.
    #[test]
    fn followed_addresses_are_always_safe(
        raw in "(https?:)?(/|\\\\|\t|@|[a-z.]|%2e|%40|:){0,40}",
        host in "[a-z]{0,6}(\\.example\\.org)?",
    ) {
        let p = policy(&["example.org"]);
        for candidate in [raw.clone(), format!("https://{host}{raw}")] {
            if let Some(rd) = verify(&key(), &p, &candidate, &forged(&candidate)) {
                let url = Url::parse(rd.as_str()).unwrap();
                prop_assert_eq!(url.scheme(), "https");
                prop_assert!(p.domains.allows(url.host_str().unwrap()));
                prop_assert!(url.username().is_empty() && url.password().is_none());
                prop_assert!(rd.as_str().is_ascii());
                prop_assert!(plain_text(rd.as_str()));
                // Re-parsing the emitted text gives the same URL (no parser differential).
                prop_assert_eq!(url.as_str(), rd.as_str());
            }
        }
    }
}

#[test]
fn settings_refuse_what_cannot_work_and_warn_about_loops() {
    let d = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ok = settings(
        Some("https://auth.example.org"),
        &d(&["example.org", "auth.example.org"]),
        Some(".Example.org"),
    )
    .unwrap();
    assert_eq!(ok.cookie_domain.as_deref(), Some("example.org"));
    assert!(!ok.policy.allow_http);
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    // The public host outside the cookie domain: refused.
    assert!(settings(Some("https://login.other.net"), &[], Some("example.org")).is_err());
    // A forward domain nobody can share the cookie with: a warning naming it.
    let w = settings(
        Some("http://auth.example.org:8080"),
        &d(&["apps.example.net"]),
        Some("example.org"),
    )
    .unwrap();
    assert!(w.policy.allow_http);
    assert_eq!(w.warnings.len(), 1);
    assert!(w.warnings[0].contains("apps.example.net"));
    // Without --cookie-domain, only the public host itself is free of the warning.
    let host_only = settings(
        Some("https://auth.example.org"),
        &d(&["auth.example.org", "app.example.org"]),
        None,
    )
    .unwrap();
    assert_eq!(host_only.warnings.len(), 1);
    // rd or a cookie domain without a public URL, and bad values: refused with a reason.
    for (public, domains, cookie) in [
        (None, d(&["example.org"]), None),
        (None, d(&[]), Some("example.org")),
        (Some("ftp://auth.example.org"), d(&[]), None),
        (Some("auth.example.org"), d(&[]), None),
        (Some("https://auth.example.org"), d(&["exa mple"]), None),
        (Some("https://auth.example.org"), d(&[]), Some("127.0.0.1")),
    ] {
        let e = settings(public, &domains, cookie).unwrap_err();
        assert!(e.starts_with("--"), "{e}");
    }
    assert!(settings(None, &[], None).unwrap().policy.domains.is_empty());
}
