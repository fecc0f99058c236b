//! Prometheus metrics: one process-global registry, a request middleware for the public site,
//! the event counters the flows report into, and a private `/metrics` server on its own address
//! (`--metrics-bind`), so the public port never exposes them.
//!
//! Label values come only from bounded sets: the matched route *pattern* (or `unmatched`), a
//! fixed list of methods, status codes, and the `&'static str` kinds and outcomes the code
//! passes to [`event`]. Nothing a client sends can create a new series.

use std::borrow::Cow;
use std::future::{Future, Ready, ready};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::server::StartError;
use crate::state::AppState;

/// The exposition format `prometheus-client` writes: OpenMetrics 1.0 text (ends in `# EOF`).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Page requests take well under a millisecond; sign-ins at default Argon2 costs ~50 ms and
/// more when the KDF queue is long; the request timeout bounds the top.
const HTTP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// An idle pool starts a job within microseconds; a saturated one makes jobs wait for every
/// job ahead of them (queue length × ~50 ms / threads).
const KDF_WAIT_BUCKETS: [f64; 14] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: Cow<'static, str>,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    event: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// Every metric, plus the registry that holds a handle to each (the handles share state, so
/// updating a field shows in the registry's output).
struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpLabels>,
    events: Family<EventLabels, Counter>,
    sign_ins: Family<OutcomeLabels, Counter>,
    locks: Counter,
    throttles: Family<KindLabels, Counter>,
    kdf_queue_depth: Gauge,
    kdf_wait: Histogram,
    active_sessions: Gauge,
    db_errors: Counter,
    resident_memory: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let m = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram),
            events: Family::default(),
            sign_ins: Family::default(),
            locks: Counter::default(),
            throttles: Family::default(),
            kdf_queue_depth: Gauge::default(),
            kdf_wait: Histogram::new(KDF_WAIT_BUCKETS),
            active_sessions: Gauge::default(),
            db_errors: Counter::default(),
            resident_memory: Gauge::default(),
        };
        let mut r = m.registry;
        // Counters get `_total` and units their suffix from the crate, as OpenMetrics requires.
        r.register(
            "gatehouse_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            m.http_requests.clone(),
        );
        r.register_with_unit(
            "gatehouse_http_request_duration",
            "Time from the request reaching the app to its response head, by route pattern, \
             method and status",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        r.register(
            "gatehouse_events",
            "Audited events (sign_up, sign_in, sign_out, password_change, ...) by outcome",
            m.events.clone(),
        );
        r.register(
            "gatehouse_sign_ins",
            "Sign-in attempts by outcome",
            m.sign_ins.clone(),
        );
        r.register(
            "gatehouse_locks",
            "Attempts refused because the username or device was locked",
            m.locks.clone(),
        );
        r.register(
            "gatehouse_throttles",
            "Attempts refused by the per-address limits, by event",
            m.throttles.clone(),
        );
        r.register(
            "gatehouse_kdf_queue_depth",
            "Password hashing jobs waiting for a KDF thread",
            m.kdf_queue_depth.clone(),
        );
        r.register_with_unit(
            "gatehouse_kdf_wait",
            "Time a password hashing job waited between submission and starting on a KDF thread",
            Unit::Seconds,
            m.kdf_wait.clone(),
        );
        r.register(
            "gatehouse_active_sessions",
            "Sessions whose absolute lifetime has not ended (idle ones count until purged)",
            m.active_sessions.clone(),
        );
        r.register(
            "gatehouse_db_errors",
            "Database errors that reached a response",
            m.db_errors.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident set size of the process",
            Unit::Bytes,
            m.resident_memory.clone(),
        );
        Self { registry: r, ..m }
    }

    fn event(&self, kind: &'static str, outcome: &'static str) {
        self.events
            .get_or_create(&EventLabels {
                event: kind,
                outcome,
            })
            .inc();
        if kind == "sign_in" {
            self.sign_ins
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
        }
        match outcome {
            "locked" => {
                self.locks.inc();
            }
            "throttled" => {
                self.throttles
                    .get_or_create(&KindLabels { event: kind })
                    .inc();
            }
            _ => {}
        }
    }

    fn request(&self, labels: HttpLabels, elapsed: Duration) {
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// One audited event (`kind` e.g. `sign_in`, `outcome` e.g. `ok`, `failed`, `locked`,
/// `throttled`), counted by kind and outcome.
pub fn event(kind: &'static str, outcome: &'static str) {
    METRICS.event(kind, outcome);
}

/// A store error that became an error response.
pub fn db_error() {
    METRICS.db_errors.inc();
}

/// How long a KDF job waited for a thread.
pub fn kdf_wait(waited: Duration) {
    METRICS.kdf_wait.observe(waited.as_secs_f64());
}

/// The registry as OpenMetrics text, as it stands (scrape-time gauges not refreshed).
pub fn render() -> String {
    METRICS.render().unwrap_or_default()
}

/// The method label: the standard methods by name, anything else `other`, so a client cannot
/// create series by inventing methods.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Records `gatehouse_http_requests_total` and `gatehouse_http_request_duration_seconds` for
/// every request of the app it wraps (outermost, so its time covers the other middleware).
/// Disabled, it only passes requests through: nothing can scrape the numbers anyway.
#[derive(Clone, Copy)]
pub struct HttpMetrics {
    enabled: bool,
}

impl HttpMetrics {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = HttpMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpMetricsService {
            service,
            enabled: self.enabled,
        }))
    }
}

pub struct HttpMetricsService<S> {
    service: S,
    enabled: bool,
}

impl<S, B> Service<ServiceRequest> for HttpMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Recorded<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // The route is only known once the app has routed the request, so it is read from the
        // response's request; the method is read now, while the request is ours.
        let start = self
            .enabled
            .then(|| (Instant::now(), method_label(req.method())));
        Recorded {
            inner: self.service.call(req),
            start,
        }
    }
}

pin_project_lite::pin_project! {
    /// The wrapped service's future, recording when it completes. A named future rather than a
    /// boxed one: no allocation per request.
    pub struct Recorded<F> {
        #[pin]
        inner: F,
        start: Option<(Instant, &'static str)>,
    }
}

impl<F, B> Future for Recorded<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some((started, method)) = this.start.take() {
            let (route, status) = match &result {
                Ok(res) => (route(res.request()), res.status()),
                // The app turns handler errors into responses itself, so this is a middleware
                // failure, with no routed request left to read.
                Err(e) => (
                    Cow::Borrowed("unmatched"),
                    e.as_response_error().status_code(),
                ),
            };
            METRICS.request(
                HttpLabels {
                    route,
                    method,
                    status: status.as_u16(),
                },
                started.elapsed(),
            );
        }
        Poll::Ready(result)
    }
}

/// The pattern of the resource that matched, e.g. `/static/{name}`: one series per route
/// whatever the URL; `unmatched` for what the app's default (404) service answered.
fn route(req: &HttpRequest) -> Cow<'static, str> {
    // The router consumes the whole path of a request it matches to a resource, and leaves it
    // untouched for the default service. Checking that first spares an unmatched request
    // (whose path the client chooses) a second walk over every route pattern, regexes
    // included, in `match_pattern`; a matched one is looked up by its resource id.
    if !req.match_info().unprocessed().is_empty() {
        return Cow::Borrowed("unmatched");
    }
    req.match_pattern()
        .map_or(Cow::Borrowed("unmatched"), Cow::Owned)
}

/// `GET /metrics`: refreshes the gauges that are read at scrape time, then renders.
async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let m = &*METRICS;
    m.kdf_queue_depth
        .set(i64::try_from(state.kdf.waiting()).unwrap_or(i64::MAX));
    if let Some(kib) = crate::server::rss_kib() {
        m.resident_memory
            .set(i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX));
    }
    let now = crate::clock::now_ms();
    // A count over the expiry index, on the blocking pool like every other store call that
    // is not a point read.
    match state.store.count_live_sessions(now).await {
        Ok(n) => {
            m.active_sessions.set(n);
        }
        Err(e) => {
            m.db_errors.inc();
            tracing::warn!("metrics: counting sessions failed: {e}");
        }
    }
    match m.render() {
        Ok(body) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// Binds `--metrics-bind` and builds the private metrics server: one worker, `GET /metrics`
/// only, no signal handling of its own (the caller stops it with the public server).
pub fn server(addr: SocketAddr, state: web::Data<AppState>) -> Result<Server, StartError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let local = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(|| async {
                HttpResponse::build(StatusCode::NOT_FOUND).body("not found: try /metrics\n")
            }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    tracing::info!("metrics on http://{local}/metrics");
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name` whose labels are exactly `labels` (in any order).
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<(&str, &str)> = labels.to_vec();
        want.sort_unstable();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
                let mut got = rest
                    .strip_suffix('}')?
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| kv.split_once('=').map(|(k, v)| (k, v.trim_matches('"'))))
                    .collect::<Option<Vec<_>>>()?;
                got.sort_unstable();
                (n == name && got == want).then(|| value.parse().ok())?
            })
    }

    #[test]
    fn events_land_in_their_families() {
        let m = Metrics::new();
        m.event("sign_in", "ok");
        m.event("sign_in", "ok");
        m.event("sign_in", "failed");
        m.event("sign_in", "locked");
        m.event("sign_in", "throttled");
        m.event("password_change", "locked");
        m.event("sign_up", "throttled");
        m.event("sign_up", "taken");
        let text = m.render().unwrap();
        let get = |name: &str, labels: &[(&str, &str)]| {
            sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
        };

        let events = "gatehouse_events_total";
        assert_eq!(get(events, &[("event", "sign_in"), ("outcome", "ok")]), 2.0);
        assert_eq!(
            get(events, &[("event", "sign_in"), ("outcome", "failed")]),
            1.0
        );
        assert_eq!(
            get(events, &[("event", "sign_up"), ("outcome", "taken")]),
            1.0
        );
        assert_eq!(
            get(
                events,
                &[("event", "password_change"), ("outcome", "locked")]
            ),
            1.0
        );
        let sign_ins = "gatehouse_sign_ins_total";
        assert_eq!(get(sign_ins, &[("outcome", "ok")]), 2.0);
        assert_eq!(get(sign_ins, &[("outcome", "failed")]), 1.0);
        assert_eq!(get(sign_ins, &[("outcome", "locked")]), 1.0);
        assert_eq!(get(sign_ins, &[("outcome", "throttled")]), 1.0);
        assert_eq!(
            sample(&text, sign_ins, &[("outcome", "taken")]),
            None,
            "only sign_in events count as sign-ins"
        );
        assert_eq!(
            get("gatehouse_locks_total", &[]),
            2.0,
            "locks of every kind"
        );
        let throttles = "gatehouse_throttles_total";
        assert_eq!(get(throttles, &[("event", "sign_in")]), 1.0);
        assert_eq!(get(throttles, &[("event", "sign_up")]), 1.0);
        assert_eq!(
            sample(&text, throttles, &[("event", "password_change")]),
            None
        );
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text");
    }

    #[test]
    fn the_global_event_function_reaches_the_global_registry() {
        // A kind no flow uses, so tests running alongside cannot change the count.
        event("metrics_unit_test", "ok");
        let text = render();
        assert_eq!(
            sample(
                &text,
                "gatehouse_events_total",
                &[("event", "metrics_unit_test"), ("outcome", "ok")]
            ),
            Some(1.0)
        );
        // Labelled families appear with their first series; these have one from the start.
        for family in [
            "gatehouse_locks",
            "gatehouse_kdf_queue_depth",
            "gatehouse_kdf_wait_seconds",
            "gatehouse_active_sessions",
            "gatehouse_db_errors",
            "process_resident_memory_bytes",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} declared in\n{text}"
            );
        }
    }

    #[test]
    fn requests_are_labelled_by_pattern_and_known_method() {
        let m = Metrics::new();
        let labels = |route: &'static str, method: &Method| HttpLabels {
            route: Cow::Borrowed(route),
            method: method_label(method),
            status: 200,
        };
        m.request(labels("/welcome", &Method::GET), Duration::from_micros(300));
        m.request(labels("/welcome", &Method::GET), Duration::from_millis(30));
        let brew = Method::from_bytes(b"BREW").unwrap();
        m.request(labels("unmatched", &brew), Duration::from_micros(300));
        let text = m.render().unwrap();
        let get = |name: &str, labels: &[(&str, &str)]| {
            sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
        };
        let welcome = [("route", "/welcome"), ("method", "GET"), ("status", "200")];
        assert_eq!(get("gatehouse_http_requests_total", &welcome), 2.0);
        let duration = "gatehouse_http_request_duration_seconds";
        assert_eq!(get(&format!("{duration}_count"), &welcome), 2.0);
        let fast = [&welcome[..], &[("le", "0.0005")]].concat();
        assert_eq!(get(&format!("{duration}_bucket"), &fast), 1.0);
        assert_eq!(
            get(
                "gatehouse_http_requests_total",
                &[
                    ("route", "unmatched"),
                    ("method", "other"),
                    ("status", "200")
                ]
            ),
            1.0
        );
    }
}
