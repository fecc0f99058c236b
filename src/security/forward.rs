//! Forward-auth return addresses (docs/behaviour.md §10.2): the `rd` a reverse proxy's sign-in
//! redirect carries back to an app on another host. `rd` is an absolute URL, so unlike `next` it
//! can point anywhere: it is followed only when HMAC-signed with its own `"forward:"` label and
//! its host is one of `--forward-domains` (or under one).
//!
//! The rules follow the open-redirect bugs of similar tools (oauth2-proxy's `rd` CVEs, Django's
//! `url_has_allowed_host_and_scheme`): the raw text is refused when it holds anything a browser
//! or a URL parser would silently drop or reinterpret (tabs, newlines, backslashes, spaces),
//! then parsed with a WHATWG parser (the `url` crate, which parses as browsers do) and judged on
//! what the parser understood. The serialisation of that parse is what is signed and what is
//! emitted in `Location`, so no second parser ever sees a different URL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::{Host, Url};

use crate::security::secret::SecretKey;

const LABEL: &str = "forward:";

/// The hosts an `rd` may lead to: each entry itself or any name under it. Entries are domain
/// names as a URL parser normalises them (lower case, IDNA to punycode), with no leading dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardDomains(Vec<String>);

impl ForwardDomains {
    /// Parses `--forward-domains` entries; `.example.org` means the same as `example.org`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let raw = entry.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            out.push(
                normalise_domain(raw.strip_prefix('.').unwrap_or(raw))
                    .ok_or_else(|| format!("{raw:?} is not a domain name (e.g. example.org)"))?,
            );
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// Whether `host` (already normalised by a URL parser) is an entry or under one. A bare
    /// suffix match would let `badexample.org` pass for `example.org`: the label boundary
    /// (the `.`) is required.
    pub fn allows(&self, host: &str) -> bool {
        self.0.iter().any(|d| is_under(host, d))
    }
}

/// `host` equals `domain` or ends with `.` + `domain`.
pub fn is_under(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// A domain name as the URL parser would hold it, or `None` for an IP address or garbage.
pub fn normalise_domain(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.ends_with('.') || raw.chars().any(|c| c.is_whitespace() || c == '/') {
        return None;
    }
    match Host::parse(raw).ok()? {
        Host::Domain(d)
            if d.contains(|c: char| c.is_ascii_alphabetic())
                && !d.split('.').any(str::is_empty) =>
        {
            Some(d)
        }
        _ => None,
    }
}

/// Which return addresses this server follows: the domains, and whether plain `http://` is
/// allowed (only when `--public-url` itself is `http://`, as in a local set-up).
#[derive(Clone, Debug, Default)]
pub struct ForwardPolicy {
    pub domains: ForwardDomains,
    pub allow_http: bool,
}

/// A return address that passed every rule; [`ReturnUrl::as_str`] is its WHATWG
/// serialisation, the exact text that is signed and sent in `Location`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnUrl(Url);

impl ReturnUrl {
    pub const MAX_BYTES: usize = 2048;

    /// Judges `raw` (an original URL from a proxy, or an `rd` from a query string).
    pub fn parse(raw: &str, policy: &ForwardPolicy) -> Option<Self> {
        if policy.domains.is_empty() || !plain_text(raw) {
            return None;
        }
        let url = Url::parse(raw).ok()?;
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => policy.allow_http,
            _ => false,
        };
        let host_ok = match url.host() {
            Some(Host::Domain(d)) => policy.domains.allows(d),
            _ => false,
        };
        let ok = scheme_ok
            && host_ok
            && url.username().is_empty()
            && url.password().is_none()
            && url.as_str().len() <= Self::MAX_BYTES
            // The serialisation is what goes out: it must obey the same text rules.
            && plain_text(url.as_str());
        ok.then_some(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

/// No control characters, whitespace (WHATWG parsers strip tabs and newlines anywhere, which
/// turned `/\t/evil` into `//evil` for oauth2-proxy) or backslashes (read as `/` in special
/// schemes), and not longer than the limit.
fn plain_text(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= ReturnUrl::MAX_BYTES
        && !raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || is_invisible(c))
}

/// Characters a browser may drop or render as nothing inside a URL.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{2060}' | '\u{FEFF}'
    )
}

pub fn sign(key: &SecretKey, rd: &ReturnUrl) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(LABEL, rd.as_str().as_bytes()))
}

/// The return address to follow: `sig` verifies over `rd` exactly as given (constant time),
/// then `rd` must pass every rule of [`ReturnUrl::parse`].
pub fn verify(key: &SecretKey, policy: &ForwardPolicy, rd: &str, sig: &str) -> Option<ReturnUrl> {
    if policy.domains.is_empty() {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(sig).ok()?;
    if !key.verify(LABEL, rd.as_bytes(), &tag) {
        return None;
    }
    ReturnUrl::parse(rd, policy)
}

/// The sign-in URL a proxy sends an anonymous browser to: `base` (the public URL) +
/// `/sign-in`, with `rd` and its signature when there is an address to return to.
pub fn sign_in_url(base: &str, key: &SecretKey, rd: Option<&ReturnUrl>) -> String {
    let base = base.trim_end_matches('/');
    match rd {
        None => format!("{base}/sign-in"),
        Some(rd) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("rd", rd.as_str())
                .append_pair("sig", &sign(key, rd))
                .finish();
            format!("{base}/sign-in?{query}")
        }
    }
}

/// The checked forward-auth settings: the policy for `rd`, the session cookie's domain, and
/// what to warn about at start.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub policy: ForwardPolicy,
    pub cookie_domain: Option<String>,
    pub warnings: Vec<String>,
}

/// Checks `--public-url`, `--forward-domains` and `--cookie-domain` together. A combination
/// that cannot work (a cookie the public host would never receive, an `rd` without a public
/// URL to sign in at) is an error; one that would loop for some hosts is a warning.
pub fn settings(
    public_url: Option<&str>,
    forward_domains: &[String],
    cookie_domain: Option<&str>,
) -> Result<Settings, String> {
    let domains =
        ForwardDomains::parse(forward_domains).map_err(|e| format!("--forward-domains: {e}"))?;
    let cookie_domain = cookie_domain
        .map(|raw| {
            let raw = raw.trim();
            normalise_domain(raw.strip_prefix('.').unwrap_or(raw))
                .ok_or_else(|| format!("--cookie-domain: {raw:?} is not a domain name"))
        })
        .transpose()?;
    let public = match public_url {
        Some(raw) => Some(public_host(raw)?),
        None if !domains.is_empty() => {
            return Err("--forward-domains needs --public-url (where the sign-in page is)".into());
        }
        None if cookie_domain.is_some() => {
            return Err("--cookie-domain needs --public-url (whose host must be under it)".into());
        }
        None => None,
    };
    let mut warnings = Vec::new();
    if let (Some(cd), Some((_, host))) = (&cookie_domain, &public)
        && !is_under(host, cd)
    {
        return Err(format!(
            "--public-url's host {host} is not under --cookie-domain {cd}: the browser \
             would never send the session cookie back to the sign-in page"
        ));
    }
    if let Some((_, host)) = &public {
        for d in domains.entries() {
            let shared = cookie_domain.as_deref().is_some_and(|cd| is_under(d, cd));
            if d != host && !shared {
                warnings.push(format!(
                    "--forward-domains entry {d} is not under --cookie-domain{}: a browser sent \
                     there comes back without the session cookie and is asked to sign in again",
                    cookie_domain.as_deref().map_or(
                        " (not set: cookies are host-only)".to_owned(),
                        |cd| format!(" {cd}")
                    )
                ));
            }
        }
    }
    Ok(Settings {
        policy: ForwardPolicy {
            domains,
            allow_http: public.as_ref().is_some_and(|(scheme, _)| scheme == "http"),
        },
        cookie_domain,
        warnings,
    })
}

/// The scheme and host of `--public-url`, which must be an http(s) origin with a domain name
/// or an address.
fn public_host(raw: &str) -> Result<(String, String), String> {
    let url = Url::parse(raw).map_err(|e| format!("--public-url {raw:?}: {e}"))?;
    match (url.scheme(), url.host_str()) {
        (scheme @ ("http" | "https"), Some(host)) => Ok((scheme.to_owned(), host.to_owned())),
        _ => Err(format!(
            "--public-url {raw:?} must be an http:// or https:// URL, e.g. https://auth.example.org"
        )),
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
