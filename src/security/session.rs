//! Session cookies and their rules (docs/behaviour.md §6): a random UUID v4 in the cookie, only its
//! SHA-256 on the server, idle and absolute expiry, and validity tied to the user's state.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A session id as the browser holds it. Never stored or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(Uuid);

impl SessionId {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a cookie value: only a hyphenated UUID v4 is accepted; anything else means
    /// "anonymous".
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != 36 {
            return None;
        }
        let id = Uuid::try_parse(value).ok()?;
        (id.get_version_num() == 4 && id.hyphenated().to_string() == value.to_ascii_lowercase())
            .then_some(Self(id))
    }

    /// What the database stores: SHA-256 of the id's canonical text.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.hyphenated().to_string().as_bytes()).into()
    }

    pub fn cookie_value(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(***)")
    }
}

/// The value of cookie `name` in a `Cookie` request header (several headers may be joined with
/// "; "). Garbage pairs are skipped; the first well-formed `name=` wins.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    cookie::Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| match c.value_raw() {
            Some(raw) => std::borrow::Cow::Borrowed(raw.trim_matches('"')),
            None => std::borrow::Cow::Owned(c.value().to_owned()),
        })
}

/// The session id from a `Cookie` header, if it holds a well-formed one.
pub fn session_from_header(header: &str, name: &str) -> Option<SessionId> {
    SessionId::parse(&cookie_value(header, name)?)
}

/// How many cookies named `name` the header carries. Browsers send every cookie whose
/// domain and path match, so two means a second one was set beside the server's own.
pub fn cookie_count(header: &str, name: &str) -> usize {
    cookie::Cookie::split_parse(header)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .count()
}

/// Cookie names and attributes, and the session lifetimes.
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    pub secure: bool,
    pub idle: Duration,
    pub max: Duration,
    /// `--cookie-domain`: the session cookie (only it) is sent to every host under this name.
    pub domain: Option<String>,
}

impl SessionPolicy {
    pub const MAX_PER_USER: usize = 50;

    /// `__Host-` pins a cookie to one host, so a shared (`Domain=`) session cookie takes
    /// `__Secure-` instead: a plain-HTTP page still cannot plant it.
    pub fn cookie_name(&self) -> &'static str {
        match (self.secure, self.domain.is_some()) {
            (true, false) => "__Host-session",
            (true, true) => "__Secure-session",
            (false, _) => "session",
        }
    }

    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.secure { "__Host-csrf" } else { "csrf" }
    }

    pub fn session_cookie(&self, id: &SessionId) -> Cookie<'static> {
        self.shared(self.base_cookie(self.cookie_name(), id.cookie_value(), self.max))
    }

    /// An expired cookie that makes the browser drop its session cookie.
    pub fn clear_session_cookie(&self) -> Cookie<'static> {
        self.shared(self.base_cookie(self.cookie_name(), String::new(), Duration::ZERO))
    }

    /// Expires a host-only session cookie: with two session cookies in a request, one may
    /// have been planted (by a sibling host, for `Domain=` ones, or a script); the host-only
    /// one is the one this answer can reach without knowing which.
    pub fn clear_host_only_session_cookie(&self) -> Cookie<'static> {
        self.base_cookie(self.cookie_name(), String::new(), Duration::ZERO)
    }

    fn shared(&self, mut c: Cookie<'static>) -> Cookie<'static> {
        if let Some(d) = &self.domain {
            c.set_domain(d.clone());
        }
        c
    }

    pub fn device_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-device"
        } else {
            "device"
        }
    }

    /// The device cookie: lives as long as the token it carries.
    pub fn device_cookie(&self, token: String) -> Cookie<'static> {
        let lifetime = Duration::from_millis(crate::security::device::LIFETIME_MS as u64);
        self.base_cookie(self.device_cookie_name(), token, lifetime)
    }

    pub fn pending_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-pending_sign_in"
        } else {
            "pending_sign_in"
        }
    }

    /// The pending sign-in cookie of the code step (§13.1): names a server-side record, lives
    /// as long as it does; `None` expires it.
    pub fn pending_cookie(&self, id: Option<&SessionId>, lifetime: Duration) -> Cookie<'static> {
        match id {
            Some(id) => self.base_cookie(self.pending_cookie_name(), id.cookie_value(), lifetime),
            None => self.base_cookie(self.pending_cookie_name(), String::new(), Duration::ZERO),
        }
    }

    /// The anonymous CSRF cookie: a browser-lifetime random value, no data in it.
    pub fn csrf_cookie(&self, value: String) -> Cookie<'static> {
        let mut c = self.base_cookie(self.csrf_cookie_name(), value, Duration::ZERO);
        c.set_max_age(None);
        c
    }

    fn base_cookie(&self, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
        let mut c = Cookie::new(name, value);
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_path("/");
        c.set_secure(self.secure);
        c.set_max_age(actix_web::cookie::time::Duration::seconds(
            max_age.as_secs() as i64,
        ));
        c
    }

    /// How stale the stored "last seen" may get before it is rewritten: a quarter of the idle
    /// timeout at most, and at most a minute, so the idle rule is honoured to that precision
    /// without a write on every request.
    pub fn touch_interval_ms(&self) -> i64 {
        (self.idle.as_millis() as i64 / 4).min(60_000)
    }
}

/// The stored facts a validity decision needs.
#[derive(Clone, Debug)]
pub struct SessionState {
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub expires_ms: i64,
    pub user_active: bool,
    pub password_changed_ms: i64,
}

/// Valid while the user is active, the session was created after the last password change,
/// and neither the idle nor the absolute limit has passed.
pub fn is_valid(s: &SessionState, policy: &SessionPolicy, now_ms: i64) -> bool {
    s.user_active
        && s.created_ms >= s.password_changed_ms
        && now_ms < s.expires_ms
        && now_ms
            < s.last_seen_ms
                .saturating_add(policy.idle.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SessionPolicy {
        SessionPolicy {
            secure: false,
            idle: Duration::from_secs(1800),
            max: Duration::from_secs(43_200),
            domain: None,
        }
    }

    #[test]
    fn parses_only_canonical_v4_uuids() {
        let id = SessionId::generate();
        let v = id.cookie_value();
        assert!(SessionId::parse(&v).is_some());
        assert!(SessionId::parse(&v.to_ascii_uppercase()).is_some());
        for bad in [
            "",
            "null",
            "undefined",
            "0",
            "../../etc/passwd",
            "' OR 1=1 --",
            "00000000-0000-0000-0000-000000000000", // nil, not v4
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8", // v1
            "{6ba7b810-9dad-41d1-80b4-00c04fd430c8}",
            "6ba7b8109dad41d180b400c04fd430c8",
            "urn:uuid:6ba7b810-9dad-41d1-80b4-00c04fd430c8",
            "6ba7b810-9dad-41d1-80b4-00c04fd430c",
            "6ba7b810-9dad-41d1-80b4-00c04fd430c8x",
            "6ba7b810-9dad-41d1-80b4-00c04fd430g8",
            "\u{0}\u{0}\u{0}",
        ] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
        let s = "x".repeat(10_000);
        assert!(SessionId::parse(&s).is_none());
    }

    #[test]
    fn cookie_headers_of_garbage_mean_no_session() {
        let id = SessionId::generate().cookie_value();
        assert!(session_from_header(&format!("session={id}"), "session").is_some());
        assert!(session_from_header(&format!("a=b; session={id}; c=d"), "session").is_some());
        assert!(session_from_header(&format!("=;;; junk; session={id}"), "session").is_some());
        assert!(session_from_header(&format!("__Host-session={id}"), "session").is_none());
        for bad in [
            "",
            ";",
            "session",
            "session=",
            "session=;",
            "session=x",
            "sess ion=1",
            "\u{0}=\u{0}",
            "session=%00",
        ] {
            assert!(session_from_header(bad, "session").is_none(), "{bad:?}");
        }
        assert_eq!(
            cookie_value("csrf=abc; x=1", "csrf").as_deref(),
            Some("abc")
        );
    }

    proptest::proptest! {
        #[test]
        fn cookie_parsing_never_panics(header in "\\PC{0,200}") {
            let _ = session_from_header(&header, "session");
        }
    }

    #[test]
    fn hash_is_sha256_of_the_text_and_differs_per_id() {
        let id = SessionId::parse("6ba7b810-9dad-41d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            hex::encode(id.hash()),
            hex::encode(Sha256::digest(b"6ba7b810-9dad-41d1-80b4-00c04fd430c8"))
        );
        assert_ne!(SessionId::generate().hash(), SessionId::generate().hash());
        assert!(!format!("{id:?}").contains("6ba7"));
    }

    #[test]
    fn cookie_attributes() {
        let p = policy();
        let c = p.session_cookie(&SessionId::generate()).to_string();
        assert!(c.starts_with("session="));
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Secure"));
        let secure = SessionPolicy { secure: true, ..p };
        let c = secure.session_cookie(&SessionId::generate()).to_string();
        assert!(c.starts_with("__Host-session=") && c.contains("Secure") && !c.contains("Domain"));
        assert!(
            secure
                .clear_session_cookie()
                .to_string()
                .contains("Max-Age=0")
        );
        assert!(
            secure
                .csrf_cookie("v".into())
                .to_string()
                .starts_with("__Host-csrf=v")
        );
    }

    #[test]
    fn a_cookie_domain_shares_the_session_cookie_only() {
        let shared = SessionPolicy {
            secure: true,
            domain: Some("example.org".into()),
            ..policy()
        };
        let c = shared.session_cookie(&SessionId::generate()).to_string();
        assert!(c.starts_with("__Secure-session="), "{c}");
        assert!(
            c.contains("Domain=example.org") && c.contains("Secure"),
            "{c}"
        );
        let cleared = shared.clear_session_cookie().to_string();
        assert!(cleared.contains("Domain=example.org") && cleared.contains("Max-Age=0"));
        let host_only = shared.clear_host_only_session_cookie().to_string();
        assert!(host_only.starts_with("__Secure-session=") && !host_only.contains("Domain"));
        // The device and CSRF cookies stay host-only, under their `__Host-` names.
        let device = shared.device_cookie("t".into()).to_string();
        let csrf = shared.csrf_cookie("v".into()).to_string();
        assert!(device.starts_with("__Host-device=") && !device.contains("Domain"));
        assert!(csrf.starts_with("__Host-csrf=") && !csrf.contains("Domain"));
        // Without secure cookies the name stays `session`, with the domain.
        let plain = SessionPolicy {
            domain: Some("example.org".into()),
            ..policy()
        };
        let c = plain.session_cookie(&SessionId::generate()).to_string();
        assert!(c.starts_with("session=") && c.contains("Domain=example.org"));
    }

    #[test]
    fn cookie_count_sees_duplicates() {
        let a = SessionId::generate().cookie_value();
        let b = SessionId::generate().cookie_value();
        assert_eq!(cookie_count(&format!("session={a}"), "session"), 1);
        assert_eq!(
            cookie_count(&format!("session={a}; x=1; session={b}"), "session"),
            2
        );
        assert_eq!(
            cookie_count(&format!("session={a}; session={a}"), "session"),
            2
        );
        assert_eq!(cookie_count("sessions=1; xsession=2", "session"), 0);
    }

    #[test]
    fn validity_rules() {
        let p = policy();
        let base = SessionState {
            created_ms: 1_000,
            last_seen_ms: 1_000,
            expires_ms: 1_000 + 43_200_000,
            user_active: true,
            password_changed_ms: 500,
        };
        assert!(is_valid(&base, &p, 2_000));
        // idle: 30 minutes after last seen
        assert!(!is_valid(&base, &p, 1_000 + 1_800_000));
        let active = SessionState {
            last_seen_ms: 43_000_000,
            ..base.clone()
        };
        assert!(is_valid(&active, &p, 43_100_000));
        // absolute: 12 hours after creation even if active
        let late = SessionState {
            last_seen_ms: 44_000_000,
            ..base.clone()
        };
        assert!(!is_valid(&late, &p, 44_200_001));
        // disabled user, password changed after creation
        assert!(!is_valid(
            &SessionState {
                user_active: false,
                ..base.clone()
            },
            &p,
            2_000
        ));
        assert!(!is_valid(
            &SessionState {
                password_changed_ms: 1_001,
                ..base.clone()
            },
            &p,
            2_000
        ));
    }

    #[test]
    fn touch_interval_is_at_most_a_quarter_of_idle() {
        assert_eq!(policy().touch_interval_ms(), 60_000);
        let short = SessionPolicy {
            idle: Duration::from_secs(2),
            ..policy()
        };
        assert_eq!(short.touch_interval_ms(), 500);
    }
}
