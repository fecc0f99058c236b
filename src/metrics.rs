//! Prometheus metrics: one process-global registry and the counters, gauges and histograms
//! the rest of the code reports into. A leaf: it knows nothing of HTTP or the app's state; the
//! request middleware and the private `/metrics` server that exposes the registry live in
//! `web::metrics` (`--metrics-bind`), so the public port never exposes them.
//!
//! Label values come only from bounded sets: the matched route *pattern* (or `unmatched`), a
//! fixed list of methods, status codes, and the `&'static str` kinds and outcomes the code
//! passes to [`event`]. Nothing a client sends can create a new series.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

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
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    event: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// Registers each `name, unit, metric, help;` row with the registry `$r`, in order (a
/// metric's type differs row by row, so a loop over a table cannot hold them).
macro_rules! register {
    ($r:ident; $($name:literal, $unit:expr, $metric:expr, $help:literal;)*) => {
        $(match $unit {
            Some(unit) => $r.register_with_unit($name, $help, unit, $metric.clone()),
            None => $r.register($name, $help, $metric.clone()),
        })*
    };
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
    outbox_depth: Gauge,
    mails_sent: Counter,
    mails_failed: Family<ReasonLabels, Counter>,
    mails_dropped: Family<ReasonLabels, Counter>,
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
            outbox_depth: Gauge::default(),
            mails_sent: Counter::default(),
            mails_failed: Family::default(),
            mails_dropped: Family::default(),
        };
        let mut r = m.registry;
        // Counters get `_total` and units their suffix from the crate, as OpenMetrics requires.
        // The order here is the exposition's order.
        register! { r;
            "gatehouse_http_requests", None, m.http_requests,
                "HTTP requests answered, by route pattern, method and status";
            "gatehouse_http_request_duration", Some(Unit::Seconds), m.http_duration,
                "Time from the request reaching the app to its response head, by route pattern, \
                 method and status";
            "gatehouse_events", None, m.events,
                "Audited events (sign_up, sign_in, sign_out, password_change, ...) by outcome";
            "gatehouse_sign_ins", None, m.sign_ins,
                "Sign-in attempts by outcome";
            "gatehouse_locks", None, m.locks,
                "Attempts refused because the username or device was locked";
            "gatehouse_throttles", None, m.throttles,
                "Attempts refused by the per-address limits, by event";
            "gatehouse_kdf_queue_depth", None, m.kdf_queue_depth,
                "Password hashing jobs waiting for a KDF thread";
            "gatehouse_kdf_wait", Some(Unit::Seconds), m.kdf_wait,
                "Time a password hashing job waited between submission and starting on a KDF thread";
            "gatehouse_active_sessions", None, m.active_sessions,
                "Sessions whose absolute lifetime has not ended (idle ones count until purged)";
            "gatehouse_db_errors", None, m.db_errors,
                "Database errors that reached a response";
            "gatehouse_outbox_depth", None, m.outbox_depth,
                "Mails waiting in the outbox (growing: the SMTP server is down or refusing)";
            "gatehouse_mails_sent", None, m.mails_sent,
                "Mails the SMTP server accepted";
            "gatehouse_mails_failed", None, m.mails_failed,
                "Mails given up for good, by reason (refused: a 5xx answer; expired: their \
                 link expired before delivery; unreadable: the site key changed)";
            "gatehouse_mails_dropped", None, m.mails_dropped,
                "Mails never queued because of the outbox bounds, by reason (outbox_full, \
                 recipient_rate)";
            "process_resident_memory", Some(Unit::Bytes), m.resident_memory,
                "Resident set size of the process";
        }
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

/// The registry as OpenMetrics text, failing if it cannot be encoded.
pub fn encode() -> Result<String, std::fmt::Error> {
    METRICS.render()
}

/// One answered request: its route pattern (or `unmatched`), method label (see
/// [`method_label`]), status and the time to its response head.
pub fn request(route: Cow<'static, str>, method: &'static str, status: u16, elapsed: Duration) {
    METRICS.request(
        HttpLabels {
            route,
            method,
            status,
        },
        elapsed,
    );
}

/// Password hashing jobs waiting for a KDF thread, read at scrape time.
pub fn set_kdf_queue_depth(waiting: usize) {
    METRICS
        .kdf_queue_depth
        .set(i64::try_from(waiting).unwrap_or(i64::MAX));
}

/// Sessions whose absolute lifetime has not ended, read at scrape time.
pub fn set_active_sessions(n: i64) {
    METRICS.active_sessions.set(n);
}

/// Mails waiting in the outbox, read at scrape time.
pub fn set_outbox_depth(n: i64) {
    METRICS.outbox_depth.set(n);
}

/// A mail the SMTP server accepted.
pub fn mail_sent() {
    METRICS.mails_sent.inc();
}

/// `n` mails given up for good (`reason`: `refused`, `expired`, `unreadable`).
pub fn mail_failed(reason: &'static str, n: u64) {
    METRICS
        .mails_failed
        .get_or_create(&ReasonLabels { reason })
        .inc_by(n);
}

/// A mail dropped by the outbox bounds (`reason`: `outbox_full`, `recipient_rate`).
pub fn mail_dropped(reason: &'static str) {
    METRICS
        .mails_dropped
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

/// Refreshes the process's resident memory gauge from `/proc` (where there is one).
pub fn refresh_resident_memory() {
    if let Some(kib) = rss_kib() {
        METRICS
            .resident_memory
            .set(i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX));
    }
}

/// The process's resident set size in KiB, from `/proc/self/status` (Linux only).
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The method label: the standard methods by name, anything else `other`, so a client cannot
/// create series by inventing methods.
pub fn method_label(method: &str) -> &'static str {
    match method {
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
        let labels = |route: &'static str, method: &str| HttpLabels {
            route: Cow::Borrowed(route),
            method: method_label(method),
            status: 200,
        };
        m.request(labels("/welcome", "GET"), Duration::from_micros(300));
        m.request(labels("/welcome", "GET"), Duration::from_millis(30));
        m.request(labels("unmatched", "BREW"), Duration::from_micros(300));
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
