//! Strict request-body reading (docs/behaviour.md §6): size limit first (413), then media type
//! (415), then a parse that refuses invalid UTF-8, bad percent-escapes and repeated fields (400).

use std::collections::HashMap;

use actix_web::HttpRequest;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::accounts::PasswordInput;
use crate::web::error::AppError;

pub const MAX_BODY: usize = 64 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY`] bytes or a body that takes longer
/// than the configured client timeout to arrive (a slow-body attack holds a worker's memory,
/// not its thread, but must still end).
pub async fn read_body(req: &HttpRequest, payload: Payload) -> Result<Bytes, AppError> {
    let limit = req
        .app_data::<crate::state::State>()
        .map_or(std::time::Duration::from_secs(10), |s| s.body_timeout);
    match tokio::time::timeout(limit, read_limited(req, payload)).await {
        Ok(body) => body,
        Err(_) => Err(AppError::RequestTimeout),
    }
}

async fn read_limited(req: &HttpRequest, mut payload: Payload) -> Result<Bytes, AppError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(AppError::PayloadTooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| AppError::bad_request("The request body could not be read."))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads an HTML form body: 413 → 415 → 400, in that order.
pub async fn read_form(req: &HttpRequest, payload: Payload) -> Result<FormData, AppError> {
    let body = read_body(req, payload).await?;
    require_media_type(
        req,
        "application/x-www-form-urlencoded",
        "Forms must be sent as application/x-www-form-urlencoded.",
    )?;
    let form = FormData::parse(&body)?;
    if tracing::enabled!(tracing::Level::DEBUG) {
        // Names only, never values: lets a test see that no plain password was sent.
        let mut names: Vec<&str> = form.names().collect();
        names.sort_unstable();
        let path = redact_tokens(req.path());
        tracing::debug!(path = ?path, fields = ?names, "form received");
    }
    Ok(form)
}

/// `path` with every segment that looks like a one-time link token (32 or more base64url
/// characters: `/password-reset/TOKEN`, `/verify-email/TOKEN`) shown as `…`: no log line may
/// carry a live link.
pub fn redact_tokens(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let tokenish = seg.len() >= 32
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if tokenish { "…" } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The media type of the request, lowercased, without parameters.
fn media_type(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

pub fn require_media_type(
    req: &HttpRequest,
    wanted: &str,
    message: &'static str,
) -> Result<(), AppError> {
    if media_type(req).as_deref() == Some(wanted) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(message))
    }
}

/// A parsed `application/x-www-form-urlencoded` body: each field at most once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FormData(HashMap<String, String>);

impl FormData {
    pub fn parse(body: &[u8]) -> Result<Self, AppError> {
        let mut fields = HashMap::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = decode(k)?;
            let value = decode(v)?;
            if fields.contains_key(&key) {
                return Err(AppError::bad_request(format!(
                    "The field {:?} was sent more than once.",
                    truncate(&key, 40)
                )));
            }
            fields.insert(key, value);
        }
        Ok(Self(fields))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The field's value, `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The field's value when present and non-empty (a browser without JS sends hidden
    /// digest fields empty, which counts as absent).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The password posted as `{name}_digest` (the page's script) or `{name}` (a browser
    /// without it), e.g. `password("current_password")`.
    pub fn password(&self, name: &str) -> PasswordInput<'_> {
        PasswordInput::from_form(self.get(&format!("{name}_digest")), self.get(name), None)
    }

    /// [`Self::password`] for a new password, with its `{name}_repeat` field.
    pub fn new_password(&self, name: &str) -> PasswordInput<'_> {
        PasswordInput::from_form(
            self.get(&format!("{name}_digest")),
            self.get(name),
            Some(self.text(&format!("{name}_repeat"))),
        )
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn decode(raw: &[u8]) -> Result<String, AppError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Exactly two hex digits: `from_str_radix` alone would also take "+1".
                let hex = raw
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        AppError::bad_request("The form data has a malformed %-escape.")
                    })?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| AppError::bad_request("The form data is not valid UTF-8."))
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_segments_are_redacted() {
        let token = "xdVoI7AJNQHNizKVQVNzvxGAvzcoIxNVbJG-G6IljLY";
        assert_eq!(
            super::redact_tokens(&format!("/password-reset/{token}")),
            "/password-reset/…"
        );
        assert_eq!(
            super::redact_tokens(&format!("/api/password-reset/{token}")),
            "/api/password-reset/…"
        );
        assert_eq!(super::redact_tokens("/sign-in"), "/sign-in");
        assert_eq!(
            super::redact_tokens("/account/sessions/12/revoke"),
            "/account/sessions/12/revoke"
        );
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_fields() {
        let f = FormData::parse(b"username=Al+ice&password=p%C3%A4ss%26w&empty=&flag").unwrap();
        assert_eq!(f.get("username"), Some("Al ice"));
        assert_eq!(f.get("password"), Some("päss&w"));
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.non_empty("empty"), None);
        assert_eq!(f.get("flag"), Some(""));
        assert_eq!(f.get("missing"), None);
        assert_eq!(FormData::parse(b"").unwrap(), FormData::default());
        assert!(FormData::parse(b"&&a=1&&").unwrap().get("a") == Some("1"));
    }

    #[test]
    fn password_fields_prefer_the_digest_and_read_the_repeat() {
        let f = FormData::parse(
            b"current_password_digest=d1&current_password=p1&new_password_digest=\
              &new_password=p2&new_password_repeat=p3",
        )
        .unwrap();
        assert!(matches!(
            f.password("current_password"),
            PasswordInput::Digest("d1")
        ));
        // An empty digest (a browser without the script) counts as absent.
        assert!(matches!(
            f.new_password("new_password"),
            PasswordInput::Plain {
                password: "p2",
                repeat: Some("p3")
            }
        ));
        assert!(matches!(
            f.password("new_password"),
            PasswordInput::Plain {
                password: "p2",
                repeat: None
            }
        ));
        assert!(matches!(f.password("password"), PasswordInput::Missing));
    }

    #[test]
    fn refuses_duplicates_bad_escapes_and_bad_utf8() {
        for bad in [
            &b"a=1&a=2"[..],
            b"a=1&b=2&a=",
            b"a=%",
            b"a=%4",
            b"a=%zz",
            b"a=%FF",
            b"a=\xff",
            b"%C3=1",
            b"a=%ED%A0%80",
            b"a=%+1",
            b"a=%+F%+0",
            b"a=%-1",
            b"a=% 1",
        ] {
            let e = FormData::parse(bad).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = FormData::parse(&body);
        }

        #[test]
        fn round_trips_serialised_forms(pairs in proptest::collection::hash_map("\\PC{0,12}", "\\PC{0,20}", 0..6)) {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
            let parsed = FormData::parse(body.as_bytes()).unwrap();
            for (k, v) in &pairs {
                prop_assert_eq!(parsed.get(k), Some(v.as_str()));
            }
        }
    }
}
