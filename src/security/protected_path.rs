//! The members folder's two checked names (README "Protecting your pages"): the URL prefix it is
//! served at ([`ProtectPrefix`], refused at start when it overlaps Gatehouse's own routes) and a
//! request path under it ([`ProtectedPath`]), which names a file strictly inside the folder or is
//! refused. Parse, don't validate: the file opener takes only a [`ProtectedPath`].

use percent_encoding::percent_decode_str;

/// Gatehouse's own routes: the prefix may be none of them, under none of them, and above none.
pub const RESERVED: &[&str] = &[
    "/sign-in",
    "/sign-up",
    "/sign-out",
    "/account",
    "/api",
    "/static",
    "/auth",
    "/healthz",
    "/welcome",
    "/favicon.ico",
    "/robots.txt",
    "/metrics",
];

/// A `--protect-at` prefix: `/` then segments of `[A-Za-z0-9._~-]`, none `.`/`..` or empty, no
/// trailing slash, clear of [`RESERVED`] and of `/` itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectPrefix(String);

impl ProtectPrefix {
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix('/')
            .ok_or_else(|| format!("--protect-at {s:?} must start with /"))?;
        if rest.is_empty() {
            return Err("--protect-at / would cover the whole site; choose e.g. /members".into());
        }
        let plain = |seg: &str| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        };
        if !rest.split('/').all(plain) {
            return Err(format!(
                "--protect-at {s:?} must be /NAME[/NAME…] of letters, digits, '-', '.', '_', '~' \
                 without a trailing slash"
            ));
        }
        let under = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if let Some(own) = RESERVED.iter().find(|r| under(s, r) || under(r, s)) {
            return Err(format!(
                "--protect-at {s} overlaps Gatehouse's own route {own}; choose another prefix"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a request path is refused (each answers 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not under the prefix")]
    Outside,
    #[error("a malformed percent-encoding or not UTF-8")]
    Malformed,
    #[error("an empty, dot or hidden segment")]
    Segment,
    #[error("a forbidden character")]
    Character,
}

/// A path inside the members folder: decoded segments, each a plain file or folder name (no
/// `/`, `\`, `%`, NUL or control character, not starting with `.`), and whether it names a
/// folder (it ended with `/`). Joining the segments can never leave the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedPath {
    segments: Vec<String>,
    folder: bool,
}

impl ProtectedPath {
    /// `raw` is the part of the request path after the prefix, still percent-encoded as
    /// received, starting with `/` (so `/members/` gives `/`). Each segment is decoded once;
    /// a decoded `%` is refused too, so double encoding cannot reach a second decoder.
    pub fn parse(raw: &str) -> Result<Self, Refused> {
        let rest = raw.strip_prefix('/').ok_or(Refused::Outside)?;
        let (body, folder) = match rest.strip_suffix('/') {
            Some(b) => (b, true),
            None => (rest, rest.is_empty()),
        };
        let mut segments = Vec::new();
        if !body.is_empty() {
            for seg in body.split('/') {
                let decoded = percent_decode_str(seg)
                    .decode_utf8()
                    .map_err(|_| Refused::Malformed)?;
                // `%` not followed by two hex digits is left as is by the decoder.
                if seg.contains('%') && !well_formed(seg) {
                    return Err(Refused::Malformed);
                }
                segments.push(check_segment(&decoded)?.to_owned());
            }
        }
        Ok(Self { segments, folder })
    }

    /// The decoded segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the request named a folder (ended with `/`, or was the prefix's `/`).
    pub fn is_folder(&self) -> bool {
        self.folder
    }

    /// The relative path to open beneath the folder: the segments joined by `/`, plus
    /// `index.html` for a folder; `.` for the folder itself is never produced.
    pub fn relative(&self) -> String {
        let mut p = self.segments.join("/");
        if self.folder {
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str("index.html");
        }
        p
    }

    /// The last segment (for the content type), if any.
    pub fn file_name(&self) -> Option<&str> {
        self.segments.last().map(String::as_str)
    }
}

/// Every `%` in `seg` starts a `%XX` hex escape.
fn well_formed(seg: &str) -> bool {
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn check_segment(seg: &str) -> Result<&str, Refused> {
    if seg.is_empty() || seg.starts_with('.') {
        return Err(Refused::Segment);
    }
    let bad = |c: char| c.is_control() || matches!(c, '/' | '\\' | '%' | '\u{2028}' | '\u{2029}');
    if seg.chars().any(bad) {
        return Err(Refused::Character);
    }
    Ok(seg)
}

#[cfg(test)]
#[path = "protected_path_tests.rs"]
mod tests;
