//! Serves the built-in files of [`crate::web::assets`] with their content hash in the URL
//! (`/static/style.css?v=…`), so browsers may cache them for a year and still pick up a new
//! version at once; also `/favicon.ico` and `/robots.txt`, which clients ask for by name.
//!
//! A request picks one of each file's compressed forms by `Accept-Encoding`.
//! HTML is never compressed (pages carry a CSRF token next to reflected input: BREACH), and
//! these files hold no secret, so compressing them is safe.

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::web::assets::{self, Asset, Encoding};

/// The coding to send for an `Accept-Encoding` header (RFC 9110 §12.5.3), among `offered`
/// (identity is always possible): the highest `q` wins, ties go to the earlier in `offered`,
/// `q=0` refuses a coding and `*` stands for every coding not named. Identity is the answer
/// when nothing else is acceptable, even if refused: a body the client did not want beats a
/// 406 for a stylesheet.
pub fn negotiate(accept: Option<&str>, offered: &[Encoding]) -> Encoding {
    let Some(accept) = accept else {
        return Encoding::Identity;
    };
    let mut named: Vec<(String, f32)> = Vec::new();
    let mut star = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if token.is_empty() {
            continue;
        }
        let mut q = 1.0;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                // An unreadable weight refuses, rather than guessing.
                q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
            }
        }
        if token == "*" {
            star = Some(q);
        } else {
            // `x-gzip` is gzip's old name (RFC 9110 §8.4.1.3).
            let token = if token == "x-gzip" {
                "gzip".into()
            } else {
                token
            };
            named.push((token, q));
        }
    }
    let weight = |e: Encoding| {
        named
            .iter()
            .find(|(t, _)| t == e.token())
            .map(|(_, q)| *q)
            .or(star)
            .unwrap_or(0.0)
    };
    // Identity competes only when named: unnamed, it is the fallback, not a preference.
    let identity = named
        .iter()
        .find(|(t, _)| t == "identity")
        .map_or(0.0, |(_, q)| *q);
    let mut best = (Encoding::Identity, identity);
    for &e in offered {
        let q = weight(e);
        if q > best.1 {
            best = (e, q);
        }
    }
    best.0
}

/// `asset` in the coding the request accepts best, with `cache` as its `Cache-Control`. The
/// ETag names the coding too: each coding is its own representation (RFC 9110 §8.8.3).
fn respond(req: &HttpRequest, asset: &'static Asset, cache: &str) -> HttpResponse {
    let offered: Vec<Encoding> = asset.compressed.iter().map(|(e, _)| *e).collect();
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let encoding = negotiate(accept, &offered);
    let body: &[u8] = asset
        .compressed
        .iter()
        .find(|(e, _)| *e == encoding)
        .map_or(asset.body, |(_, c)| c);
    let etag = match encoding {
        Encoding::Identity => format!("\"{}\"", asset.version),
        e => format!("\"{}-{}\"", asset.version, e.token()),
    };
    let not_modified = if_none_match(req, &etag);
    let mut resp = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header(ContentType(
        asset.content_type.parse().expect("literal mime"),
    ))
    .insert_header((header::CACHE_CONTROL, cache))
    .insert_header((header::ETAG, etag));
    if !offered.is_empty() {
        // Shared caches must key on the coding, identity answers included.
        resp.insert_header((header::VARY, "Accept-Encoding"));
    }
    if encoding != Encoding::Identity {
        resp.insert_header((header::CONTENT_ENCODING, encoding.token()));
    }
    if not_modified {
        resp.finish()
    } else {
        resp.body(body)
    }
}

/// Whether `If-None-Match` lists `etag` (or `*`).
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `GET /static/{name}`.
pub async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(asset) = assets::find(name.as_str()) else {
        return crate::web::respond::error(&req, &crate::web::error::AppError::NotFound);
    };
    let current =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("v").cloned())
            .is_some_and(|v| v == asset.version);
    // A stale or missing version may change under the same URL: let caches revalidate.
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    respond(&req, asset, cache)
}

/// Unversioned well-known URLs: cached for a day, then revalidated by ETag.
const WELL_KNOWN_CACHE: &str = "public, max-age=86400";

/// `GET /favicon.ico`: the SVG icon itself, 200 `image/svg+xml`. Browsers ask for this URL
/// when a page (or a non-HTML resource) names no icon; answering it directly costs one request
/// where a redirect would cost two, and never pins a versioned URL in a permanent redirect.
pub async fn favicon_ico(req: HttpRequest) -> HttpResponse {
    respond(
        &req,
        assets::find("favicon.svg").expect("built-in"),
        WELL_KNOWN_CACHE,
    )
}

/// `GET /robots.txt` (see the file for what it allows and why).
pub async fn robots_txt(req: HttpRequest) -> HttpResponse {
    respond(
        &req,
        assets::find("robots.txt").expect("built-in"),
        WELL_KNOWN_CACHE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Encoding] = &[Encoding::Brotli, Encoding::Gzip];

    #[test]
    fn negotiation_follows_the_weights() {
        use Encoding::*;
        assert_eq!(negotiate(None, ALL), Identity);
        assert_eq!(negotiate(Some(""), ALL), Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd"), ALL), Brotli);
        assert_eq!(negotiate(Some("gzip"), ALL), Gzip);
        assert_eq!(negotiate(Some("x-gzip"), ALL), Gzip);
        assert_eq!(negotiate(Some("GZIP;Q=0.5, br;q=0.4"), ALL), Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip"), ALL), Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0"), ALL), Identity);
        assert_eq!(negotiate(Some("*"), ALL), Brotli);
        assert_eq!(negotiate(Some("*;q=0.1, br;q=0"), ALL), Gzip);
        assert_eq!(negotiate(Some("identity"), ALL), Identity);
        assert_eq!(negotiate(Some("identity, br;q=0.5"), ALL), Identity);
        assert_eq!(negotiate(Some("br;q=nonsense, gzip"), ALL), Gzip);
        assert_eq!(negotiate(Some("br"), &[Gzip]), Identity);
        assert_eq!(negotiate(Some(" , ;q=1, br"), ALL), Brotli);
    }
}
