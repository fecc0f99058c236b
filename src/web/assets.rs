//! The page's JavaScript, CSS, icon and `robots.txt`, compiled into the binary: each with a
//! content-hash version for its URL (`/static/style.css?v=…`) and its compressed forms. The
//! table only: `static_files` serves it and the templates link to it.
//!
//! Each file is compressed once, with gzip and brotli at their best settings, the first time any
//! file is needed, and the smaller forms are kept.

use std::io::Write;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// A content coding this server can send (RFC 9110 §8.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
            Encoding::Identity => "identity",
        }
    }
}

/// One built-in file, with its content-hash version and compressed forms.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub version: String,
    pub url: &'static str,
    /// The compressed forms, best first, each kept only when smaller than the body.
    pub compressed: Vec<(Encoding, Vec<u8>)>,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "gatehouse.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/gatehouse.js"),
    ),
    (
        "passkeys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/passkeys.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
    (
        "robots.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../static/robots.txt"),
    ),
];

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &body[..], &mut out, &params).expect("brotli into memory");
    out
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content_type, body)| {
                let version = hex::encode(&Sha256::digest(body)[..8]);
                let url: &'static str =
                    Box::leak(format!("/static/{name}?v={version}").into_boxed_str());
                let compressed = [
                    (Encoding::Brotli, brotli(body)),
                    (Encoding::Gzip, gzip(body)),
                ]
                .into_iter()
                .filter(|(_, c)| c.len() < body.len())
                .collect();
                Asset {
                    name,
                    content_type,
                    body,
                    version,
                    url,
                    compressed,
                }
            })
            .collect()
    })
}

/// The built-in file called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    assets().iter().find(|a| a.name == name)
}

/// The versioned URL of a static file. Panics on an unknown name: names are literals in code.
pub fn url(name: &str) -> &'static str {
    find(name).map(|a| a.url).expect("known static file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_forms_decode_to_the_file() {
        use std::io::Read;
        let css = find("style.css").unwrap();
        assert_eq!(
            css.compressed.len(),
            2,
            "the stylesheet compresses both ways"
        );
        for (e, bytes) in &css.compressed {
            let mut out = Vec::new();
            match e {
                Encoding::Gzip => {
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut out)
                        .unwrap();
                }
                Encoding::Brotli => {
                    brotli::Decompressor::new(&bytes[..], 4096)
                        .read_to_end(&mut out)
                        .unwrap();
                }
                Encoding::Identity => unreachable!(),
            }
            assert_eq!(out, css.body, "{e:?}");
            assert!(bytes.len() < css.body.len() / 2, "{e:?} saves little");
        }
    }
}
