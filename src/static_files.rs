//! The page's JavaScript and CSS, compiled into the binary and served with a content hash in
//! the URL (`/static/style.css?v=…`), so browsers may cache them for a year and still pick up a
//! new version at once.

use std::sync::OnceLock;

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    version: String,
    url: &'static str,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "gatehouse.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/gatehouse.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/style.css"),
    ),
];

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content_type, body)| {
                let version = hex::encode(&Sha256::digest(body)[..8]);
                let url: &'static str =
                    Box::leak(format!("/static/{name}?v={version}").into_boxed_str());
                Asset {
                    name,
                    content_type,
                    body,
                    version,
                    url,
                }
            })
            .collect()
    })
}

/// The versioned URL of a static file. Panics on an unknown name: names are literals in code.
pub fn url(name: &str) -> &'static str {
    assets()
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.url)
        .expect("known static file")
}

/// `GET /static/{name}`.
pub async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(asset) = assets().iter().find(|a| a.name == name.as_str()) else {
        return crate::error::not_found_page(&req);
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
    HttpResponse::Ok()
        .insert_header(ContentType(
            asset.content_type.parse().expect("literal mime"),
        ))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, format!("\"{}\"", asset.version)))
        .body(asset.body)
}
