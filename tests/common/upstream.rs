//! A real upstream app for the proxy tests ([`Upstream`]): a small HTTP/1.1 server on a free
//! loopback port, in this process, that answers every request with what it received (method,
//! target, headers, body) as JSON, or, for a browser (`Accept: text/html`), with a page naming
//! the `Remote-User` it got. It also keeps every request, so a test can check what never
//! reached the app.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// One request as the app received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// Name (as sent) and value, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// Every value of header `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of header `name`; `None` when absent. Panics when sent more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.header_values(name);
        assert!(
            values.len() <= 1,
            "{name} sent {} times: {self:?}",
            values.len()
        );
        values.first().copied()
    }

    /// The echo the app sends back (what [`Received::from_json`] reads).
    pub fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "target": self.target,
            "headers": self.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "body": self.body,
        })
    }

    /// Reads an echo from the app's JSON answer.
    pub fn from_json(v: &Value) -> Received {
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Received {
            method: text("method"),
            target: text("target"),
            headers: v["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    (
                        h[0].as_str().unwrap_or_default().to_owned(),
                        h[1].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: text("body"),
        }
    }
}

/// The running app; stopped on drop.
pub struct Upstream {
    pub port: u16,
    seen: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream app");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::<Mutex<Vec<Received>>>::default();
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let seen = Arc::clone(&seen);
                    std::thread::spawn(move || serve(stream, &seen));
                }
            })
        };
        Upstream {
            port,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that the thread sees the flag and ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection: requests until the client closes, or one answer with
/// `Connection: close` when it asked for that.
fn serve(stream: TcpStream, seen: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let close = request
            .header_values("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("close"));
        let wants_html = request
            .header_values("accept")
            .iter()
            .any(|v| v.contains("text/html"));
        seen.lock().unwrap().push(request.clone());
        let (content_type, body) = if wants_html {
            ("text/html; charset=utf-8", page(&request))
        } else {
            ("application/json", request.to_json().to_string())
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
        if close {
            return;
        }
    }
}

/// Reads one request (headers, then a `Content-Length` or chunked body); `None` at the end of
/// the connection or on a malformed request.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut request = Received {
        method,
        target,
        headers,
        body: String::new(),
    };
    let chunked = request
        .header_values("transfer-encoding")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = request.header("content-length") {
        body = vec![0; length.parse().ok()?];
        reader.read_exact(&mut body).ok()?;
    }
    request.body = String::from_utf8_lossy(&body).into_owned();
    Some(request)
}

/// The app's page for a browser: who the proxy said is signed in.
fn page(request: &Received) -> String {
    let user = request.header("remote-user").unwrap_or_default();
    let escaped = user
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>The app</title>\
         </head><body><h1>The protected app</h1>\
         <p>Signed in as <strong id=\"remote-user\">{escaped}</strong></p></body></html>\n"
    )
}
