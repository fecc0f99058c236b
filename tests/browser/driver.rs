//! A small W3C WebDriver client for Debian's Chromium, spoken over plain HTTP with `reqwest`.
//!
//! Why not `fantoccini`'s client: with `default-features = false` it has no public constructor
//! for a plain-HTTP connector (only `ClientBuilder::native()` / `rustls()`, which need OpenSSL or
//! aws-lc, or `ClientBuilder::new(C)` with a `hyper-util` connector this crate cannot name). The
//! protocol is plain JSON, so the few commands the suite needs are written out here, including
//! chromedriver's `POST /session/{id}/se/log` for the performance log that carries every request
//! body Chrome sent (`Network.requestWillBeSent` → `request.postData`).
//!
//! Each [`Browser`] owns one `chromedriver --port=N` process (its own process group, killed on
//! drop), one Chromium session and a fresh profile directory.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any awaited condition may take on a busy 2-core machine.
pub const WAIT: Duration = Duration::from_secs(10);
/// A phone's user agent (Chrome on Android), for [`Browser::emulate_phone`].
pub const PHONE_USER_AGENT: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Js {
    On,
    Off,
}

/// One request Chrome sent, from the performance log.
#[derive(Clone, Debug)]
pub struct SentRequest {
    pub id: String,
    pub method: String,
    pub url: String,
    /// The request body as Chrome sent it (`postData`, or the decoded `postDataEntries`).
    pub body: Option<String>,
}

pub struct Browser {
    http: reqwest::Client,
    driver_url: String,
    session_id: String,
    session_url: String,
    driver: Option<Child>,
    /// Chromium's profile and chromedriver's log; removed on drop, after the processes end.
    _profile: tempfile::TempDir,
    sent: Mutex<Vec<SentRequest>>,
    closed: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a probe port")
        .local_addr()
        .unwrap()
        .port()
}

fn file_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(3000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[start..].to_owned()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Panics (fails the test) when the
    /// browser or its driver is missing or does not start.
    pub async fn launch(js: Js) -> Browser {
        Self::launch_with(js, &[]).await
    }

    /// Like [`Browser::launch`], with `extra` Chromium switches. A switch the defaults also
    /// set (same `--name`, e.g. `--host-resolver-rules=…`) replaces the default one.
    pub async fn launch_with(js: Js, extra: &[&str]) -> Browser {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver \
                 (scripts/test.sh does); browser tests fail rather than skip"
            );
        }
        let profile = tempfile::tempdir().expect("profile temp dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let driver_log = profile.path().join("chromedriver.log");

        // A free port can be taken between the probe and chromedriver's bind: retry.
        let mut attempt = 0;
        let (child, driver_url) = loop {
            attempt += 1;
            let port = free_port();
            let out = std::fs::File::create(&driver_log).unwrap();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut ready = false;
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if let Ok(r) = http.get(format!("{url}/status")).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == json!(true)
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if ready {
                break (child, url);
            }
            kill_group(&mut child);
            assert!(
                attempt < 3,
                "chromedriver did not become ready; its log:\n{}",
                file_tail(&driver_log)
            );
        };

        let user_data = profile.path().join("profile");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-quic".into(),
            format!("--user-data-dir={}", user_data.display()),
            "--window-size=1280,900".into(),
            "--host-resolver-rules=MAP gatehouse.test 127.0.0.1".into(),
        ];
        for switch in extra {
            let name = switch.split('=').next().unwrap_or(switch);
            args.retain(|a| a.split('=').next() != Some(name));
            args.push((*switch).to_owned());
        }
        let mut prefs = json!({});
        if js == Js::Off {
            prefs = json!({ "profile.managed_default_content_settings.javascript": 2 });
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": 30000, "script": 30000 },
                    "goog:loggingPrefs": { "performance": "ALL" },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": args,
                        "prefs": prefs,
                        "perfLoggingPrefs": { "enableNetwork": true, "enablePage": false },
                    },
                }
            }
        });
        let mut browser = Browser {
            http,
            driver_url: driver_url.clone(),
            session_id: String::new(),
            session_url: String::new(),
            driver: Some(child),
            _profile: profile,
            sent: Mutex::default(),
            closed: true,
        };
        let created = browser
            .http
            .post(format!("{driver_url}/session"))
            .json(&caps)
            .send()
            .await;
        let v: Value = match created {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => panic!("new session request failed: {e}"),
        };
        let Some(id) = v["value"]["sessionId"].as_str() else {
            panic!(
                "Chromium did not start: {v}\nchromedriver log:\n{}",
                file_tail(&driver_log)
            );
        };
        browser.session_id = id.to_owned();
        browser.session_url = format!("{driver_url}/session/{id}");
        browser.closed = false;
        browser
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{}", self.session_url, path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| format!("{method} {path}: unreadable answer: {e}"))?;
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{method} {path}: {status} {}: {}",
                v["value"]["error"], v["value"]["message"]
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    /// Opens `url` and waits until gatehouse.js has loaded.
    pub async fn goto_scripted(&self, url: &str) {
        self.goto(url).await;
        self.wait_js(
            "gatehouse.js",
            "return Boolean(window.Gatehouse)",
            json!([]),
        )
        .await;
    }

    pub async fn current_url(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, "/url", None)
            .await
            .expect("current URL");
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn try_exec(&self, script: &str, args: Value) -> Result<Value, String> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.try_exec(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\nscript: {script}"))
    }

    /// Runs an asynchronous script: its last argument is the callback that finishes it.
    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({ "script": script, "args": args }))
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\nscript: {script}"))
    }

    async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element id for {css}: {v}"))
    }

    /// Clears the input matched by `css` and types `text` into it, as a person would.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self
            .find(css)
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        self.post(&format!("/element/{id}/clear"), json!({}))
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Scrolls the element into view (instantly, whatever a page's CSS asks: smooth scrolling
    /// would move the element under chromedriver's click point) and clicks it. A click
    /// another element intercepted did not happen, so it is retried until [`WAIT`].
    pub async fn click(&self, css: &str) {
        let id = self
            .find(css)
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        let deadline = Instant::now() + WAIT;
        loop {
            self.exec(
                "arguments[0].scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' }); return null",
                json!([{ ELEMENT_KEY: id }]),
            )
            .await;
            match self.post(&format!("/element/{id}/click"), json!({})).await {
                Ok(_) => return,
                Err(e) if e.contains("click intercepted") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Polls `script` until it returns something other than `null`, `false`, `""` or `0`, and
    /// returns that. A script error (a page being replaced) counts as "not yet". Panics after
    /// [`WAIT`], naming `what`, the last answer and the page.
    pub async fn wait_js(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut last;
        loop {
            last = self.try_exec(script, args.clone()).await;
            if let Ok(v) = &last {
                let falsy = v.is_null() || *v == json!(false) || *v == json!("") || *v == json!(0);
                if !falsy {
                    return v.clone();
                }
            }
            if Instant::now() > deadline {
                let url = self.current_url().await;
                let text = self
                    .try_exec(
                        "return document.body ? document.body.innerText : ''",
                        json!([]),
                    )
                    .await
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for {what}; last answer {last:?}; at {url}; page text:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the viewport to `path` (directories created).
    pub async fn screenshot(&self, path: &Path) {
        let v = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .await
            .expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("valid base64 screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "screenshot is not a PNG"
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Like [`Browser::screenshot`], of the whole page: the window is made as tall as the
    /// document (at most 4000 px) for the shot, then put back to 1280×900.
    pub async fn screenshot_full_page(&self, path: &Path) {
        let size = self
            .exec(
                "window.scrollTo(0, 0);
                 return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]",
                json!([]),
            )
            .await;
        let content = size[0].as_u64().unwrap_or(900);
        let chrome = size[1].as_u64().unwrap_or(0);
        let height = (content + chrome).clamp(900, 4000);
        self.post("/window/rect", json!({ "width": 1280, "height": height }))
            .await
            .expect("resize the window");
        self.wait_js(
            "the window to grow",
            "return window.innerHeight >= Math.min(document.documentElement.scrollHeight, arguments[0])",
            json!([height - chrome]),
        )
        .await;
        self.screenshot(path).await;
        self.post("/window/rect", json!({ "width": 1280, "height": 900 }))
            .await
            .expect("restore the window");
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Makes the tab a phone `width` CSS pixels wide: a mobile viewport (the page's
    /// `<meta name="viewport">` applies, and content wider than the screen widens the layout
    /// instead of being cut), touch, and a phone's user agent. Stays in force across
    /// navigations in this tab.
    pub async fn emulate_phone(&self, width: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 780, "deviceScaleFactor": 3, "mobile": true }),
        )
        .await;
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            json!({ "enabled": true, "maxTouchPoints": 5 }),
        )
        .await;
        self.cdp(
            "Emulation.setUserAgentOverride",
            json!({ "userAgent": PHONE_USER_AGENT, "platform": "Android" }),
        )
        .await;
    }

    /// Like [`Browser::screenshot`], of the whole page on an emulated phone `width` wide: the
    /// phone is made as tall as the document (at most 4000 px) for the shot, then put back.
    pub async fn screenshot_phone(&self, path: &Path, width: u32) {
        let height = self
            .exec(
                "window.scrollTo(0, 0); return document.documentElement.scrollHeight",
                json!([]),
            )
            .await
            .as_u64()
            .unwrap_or(780)
            .clamp(780, 4000);
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": true }),
        )
        .await;
        self.wait_js(
            "the phone to grow",
            "return window.innerHeight >= arguments[0] - 1",
            json!([height]),
        )
        .await;
        self.screenshot(path).await;
        self.emulate_phone(width).await;
    }

    /// Reads the new performance-log entries and returns every request Chrome has sent so far.
    pub async fn sent_requests(&self) -> Vec<SentRequest> {
        let entries = self
            .post("/se/log", json!({ "type": "performance" }))
            .await
            .expect("performance log");
        let mut sent = self.sent.lock().unwrap();
        for entry in entries.as_array().into_iter().flatten() {
            let Some(text) = entry["message"].as_str() else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let message = &message["message"];
            if message["method"] != "Network.requestWillBeSent" {
                continue;
            }
            let params = &message["params"];
            let request = &params["request"];
            let body = request["postData"].as_str().map(str::to_owned).or_else(|| {
                let parts = request["postDataEntries"].as_array()?;
                let mut bytes = Vec::new();
                for part in parts {
                    let chunk = part["bytes"].as_str().unwrap_or_default();
                    bytes.extend(
                        base64::engine::general_purpose::STANDARD
                            .decode(chunk)
                            .ok()?,
                    );
                }
                Some(String::from_utf8_lossy(&bytes).into_owned())
            });
            let r = SentRequest {
                id: params["requestId"].as_str().unwrap_or_default().to_owned(),
                method: request["method"].as_str().unwrap_or_default().to_owned(),
                url: request["url"].as_str().unwrap_or_default().to_owned(),
                body,
            };
            // A redirect repeats the request id with the next URL; the same event twice is one.
            if !sent
                .iter()
                .any(|s| s.id == r.id && s.method == r.method && s.url == r.url)
            {
                sent.push(r);
            }
        }
        sent.clone()
    }

    /// Ends the session and the driver (also done, best effort, on drop).
    pub async fn quit(mut self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
        self.closed = true;
    }
}

fn kill_group(child: &mut Child) {
    // chromedriver leads its own process group (process_group(0)), so its pid names the group.
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--"])
        .arg(format!("-{}", child.id()))
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            // A panicking test cannot await: end the session with a blocking request so that
            // chromedriver closes Chromium itself.
            let hostport = self.driver_url.trim_start_matches("http://").to_owned();
            if let Ok(addr) = hostport.parse()
                && let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let req = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session_id
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf);
                }
            }
        }
        if let Some(mut child) = self.driver.take() {
            kill_group(&mut child);
        }
    }
}
