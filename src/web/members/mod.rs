//! The members-only folder (README "Protecting your pages", docs/design.md "The members
//! folder"): `--protect-dir` served at `--protect-at` to signed-in users only. Anonymous
//! visitors go to sign-in with the request target as received in the signed `next`; the path is
//! parsed into a [`ProtectedPath`] and opened beneath the folder ([`open`]); the file is sent with
//! its type, `Last-Modified`, a strong `ETag` (304 on `If-None-Match`) and
//! `Cache-Control: private, no-cache`.

use crate::pool::{PoolError, ThreadPool};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};

use crate::security::protected_path::{ProtectPrefix, ProtectedPath};
use crate::security::redirect::LocalPath;
use crate::state::State;
use crate::web::error::AppError;
use crate::web::respond;
use crate::web::visitor::Visitor;

pub mod open;

use open::Opened;

/// The folder's settings, shared by the workers.
#[derive(Clone)]
pub struct Members {
    pub dir: PathBuf,
    /// The folder's handle, reopened at most a second after the operator swaps the folder.
    handle: std::sync::Arc<FolderHandle>,
    /// Opens and reads run here: a fixed set of threads with a bounded queue (a full queue is a
    /// 503), not `web::block`, whose pool grows to hundreds of threads under a flood.
    io: ThreadPool,
    pub prefix: ProtectPrefix,
    /// The `Content-Security-Policy` of the folder's files.
    pub csp: String,
}

impl Members {
    /// The folder's settings from the server's: `None` without --protect-dir; an error names a
    /// prefix overlapping Gatehouse's own routes, a folder that is not one, or an unusable CSP.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Self>, String> {
        let prefix = ProtectPrefix::parse(&config.protect_at)?;
        let Some(dir) = &config.protect_dir else {
            return Ok(None);
        };
        if !dir.is_dir() {
            return Err(format!(
                "--protect-dir {} is not a readable directory",
                dir.display()
            ));
        }
        let csp = config
            .protect_csp
            .clone()
            .unwrap_or_else(|| crate::web::security_headers::CSP.to_owned());
        if header::HeaderValue::from_str(&csp).is_err() {
            return Err("--protect-csp must be a single line of visible ASCII".into());
        }
        Ok(Some(Self {
            dir: dir.clone(),
            handle: Default::default(),
            io: ThreadPool::new("members-io", IO_THREADS, IO_QUEUE),
            prefix,
            csp,
        }))
    }
}

/// Threads and queue of the folder's file pool: a few readers keep a slow disk from tying up
/// the whole site, and the queue bounds the waiting.
const IO_THREADS: usize = 4;
const IO_QUEUE: usize = 1024;

/// Reads happen in blocks of this size on the folder's file pool, never on an async worker.
const CHUNK: u64 = 64 * 1024;

/// Mounts the folder when one is configured; without it the prefix stays an ordinary 404.
pub fn configure(cfg: &mut web::ServiceConfig, members: Option<Members>) {
    let Some(members) = members else { return };
    let prefix = members.prefix.as_str().to_owned();
    let data = web::Data::new(members);
    for path in [prefix.clone(), format!("{prefix}/{{tail:.*}}")] {
        cfg.service(
            web::resource(path)
                .app_data(data.clone())
                .route(web::get().to(serve))
                .route(web::head().to(serve))
                .default_service(web::to(|req: HttpRequest| async move {
                    let e = AppError::MethodNotAllowed {
                        method: req.method().to_string(),
                        allow: "GET, HEAD",
                    };
                    respond::error(&req, &e)
                })),
        );
    }
}

/// `GET`/`HEAD` under the prefix.
async fn serve(
    req: HttpRequest,
    visitor: Visitor,
    state: State,
    members: web::Data<Members>,
) -> HttpResponse {
    let prefix = members.prefix.as_str();
    if visitor.current.is_none() {
        return to_sign_in(&req, &state, prefix);
    }
    let not_found = || respond::error(&req, &AppError::NotFound);
    // The path exactly as received: the router matched a decoded form, the checks use this.
    let raw = req.uri().path();
    let Some(rest) = raw.strip_prefix(prefix) else {
        return not_found();
    };
    if rest.is_empty() {
        return to_folder(&req);
    }
    let Ok(path) = ProtectedPath::parse(rest) else {
        return not_found();
    };
    let name = match path.file_name() {
        Some(n) if !path.is_folder() => n.to_owned(),
        _ => "index.html".to_owned(),
    };
    let head = req.method() == actix_web::http::Method::HEAD;
    // Opened here, on the worker: resolving a path beneath the folder is a few microseconds in
    // the kernel's dentry cache, and a hop to the pool and back cost more than the whole
    // request (docs/design.md, "The members folder"). Reading is where a cold disk can block:
    // a small file is read here only if the page cache holds all of it, else on the pool.
    let found = match members.handle.get(&members.dir) {
        Ok(dirfd) => open::open_in(&dirfd, &path),
        Err(e) if open::refused(&e) => Ok(None),
        Err(e) => Err(e),
    };
    let opened = match found {
        Ok(Some(Opened::File(file, meta))) if !head && meta.len() <= CHUNK => {
            match open::read_if_cached(&file, meta.len() as usize) {
                Ok(Some(bytes)) => Ok(Ok(Some(Found::Read(meta, Bytes::from(bytes))))),
                Ok(None) => {
                    members
                        .io
                        .run(move || {
                            let mut buf = Vec::with_capacity(meta.len() as usize);
                            (&file).take(meta.len()).read_to_end(&mut buf)?;
                            Ok::<_, std::io::Error>(Some(Found::Read(meta, Bytes::from(buf))))
                        })
                        .await
                }
                Err(e) => Ok(Err(e)),
            }
        }
        Ok(Some(Opened::File(file, meta))) => Ok(Ok(Some(Found::File(file, meta)))),
        Ok(Some(Opened::Folder)) => Ok(Ok(Some(Found::Folder))),
        Ok(None) => Ok(Ok(None)),
        Err(e) => Ok(Err(e)),
    };
    match opened {
        Ok(Ok(Some(Found::Read(meta, bytes)))) => {
            send(&req, &members, &name, Body::Read(bytes), &meta)
        }
        Ok(Ok(Some(Found::File(file, meta)))) => {
            send(&req, &members, &name, Body::File(file), &meta)
        }
        Ok(Ok(Some(Found::Folder))) => to_folder(&req),
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => respond::error(&req, &AppError::Internal(format!("members folder: {e}"))),
        Err(PoolError::Full) => respond::error(
            &req,
            &AppError::Unavailable {
                retry_after: std::time::Duration::from_secs(1),
                message: "The server is busy. Please try again in a moment.",
            },
        ),
        Err(e) => respond::error(&req, &AppError::Internal(format!("members folder: {e}"))),
    }
}

/// 303 to sign-in with the request target as received (path and query, encoding kept); a
/// target too long or odd to carry leads back to the folder's index instead.
fn to_sign_in(req: &HttpRequest, state: &State, prefix: &str) -> HttpResponse {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path(), |pq| pq.as_str());
    let back = match LocalPath::parse(target) {
        Some(p) => p.as_str().to_owned(),
        None => format!("{prefix}/"),
    };
    respond::to_sign_in(state, &back)
}

/// 308 to the same target with a slash after the path (the query kept).
fn to_folder(req: &HttpRequest) -> HttpResponse {
    let mut location = format!("{}/", req.uri().path());
    if let Some(q) = req.uri().query() {
        location.push('?');
        location.push_str(q);
    }
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .finish()
}

/// The validators of a file: a strong ETag from size, modification time and inode (any change
/// of content through the file system changes one of them), and `Last-Modified`.
fn validators(meta: &std::fs::Metadata) -> (String, Option<std::time::SystemTime>) {
    let etag = format!(
        "\"{:x}-{:x}.{:x}-{:x}\"",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    );
    (etag, meta.modified().ok())
}

/// Whether the client's copy is current: `If-None-Match` when sent (strong comparison, RFC 9110
/// §13.1.2 allows weak for GET; ours are strong either way), else `If-Modified-Since`.
fn not_modified(req: &HttpRequest, etag: &str, modified: Option<std::time::SystemTime>) -> bool {
    let inm: Vec<&str> = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !inm.is_empty() {
        return inm
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*");
    }
    let since = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        (Some(since), Some(m)) => {
            let secs = |t: std::time::SystemTime| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            secs(m) <= secs(since)
        }
        _ => false,
    }
}

/// The content type by extension; text is UTF-8 unless the file says otherwise.
fn content_type(name: &str) -> String {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || mime.subtype() == mime_guess::mime::JAVASCRIPT
        || mime.subtype() == mime_guess::mime::JSON;
    if text && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// What a request names, as the pool hands it back.
enum Found {
    /// A small file, read whole.
    Read(std::fs::Metadata, Bytes),
    /// A larger file, to stream.
    File(std::fs::File, std::fs::Metadata),
    Folder,
}

/// A file's content: read already (small files), or still to stream from the open file.
enum Body {
    Read(Bytes),
    File(std::fs::File),
}

fn send(
    req: &HttpRequest,
    members: &Members,
    name: &str,
    body: Body,
    meta: &std::fs::Metadata,
) -> HttpResponse {
    let (etag, modified) = validators(meta);
    let fresh = not_modified(req, &etag, modified);
    let mut resp = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header(("Content-Security-Policy", members.csp.as_str()));
    if let Some(m) = modified {
        resp.insert_header((header::LAST_MODIFIED, httpdate::fmt_http_date(m)));
    }
    if fresh {
        return resp.finish();
    }
    resp.insert_header((header::CONTENT_TYPE, content_type(name)));
    let len = meta.len();
    if req.method() == actix_web::http::Method::HEAD {
        // The length alone: actix sends no body for HEAD, so reading the file would be wasted.
        let none = futures_util::stream::empty::<Result<Bytes, std::io::Error>>();
        return resp.body(SizedStream::new(len, Box::pin(none)));
    }
    let file = match body {
        Body::Read(bytes) => return resp.body(bytes),
        Body::File(file) => file,
    };
    let io = members.io.clone();
    let stream = futures_util::stream::try_unfold((file, len), move |(mut file, left)| {
        let io = io.clone();
        async move {
            if left == 0 {
                return Ok(None);
            }
            let n = left.min(CHUNK);
            let (file, buf) = io
                .run(move || {
                    let mut buf = vec![0; n as usize];
                    file.read_exact(&mut buf).map(|()| (file, buf))
                })
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
            Ok::<_, std::io::Error>(Some((Bytes::from(buf), (file, left - n))))
        }
    });
    resp.body(SizedStream::new(len, Box::pin(stream)))
}

/// The folder's open handle, shared by the workers: opening the folder by path on every request
/// was a path walk and two system calls more per file. It is reopened when a second old, so a
/// folder the operator replaces (`mv new members`) is served within a second.
#[derive(Default)]
struct FolderHandle(
    std::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<std::os::fd::OwnedFd>)>>,
);

impl FolderHandle {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

    fn get(&self, dir: &std::path::Path) -> std::io::Result<std::sync::Arc<std::os::fd::OwnedFd>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, fd)) = slot.as_ref()
            && at.elapsed() < Self::FRESH
        {
            return Ok(fd.clone());
        }
        let fd = std::sync::Arc::new(open::open_dir(dir)?);
        *slot = Some((std::time::Instant::now(), fd.clone()));
        Ok(fd)
    }
}
