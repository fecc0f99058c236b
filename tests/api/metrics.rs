//! The Prometheus endpoint (`--metrics-bind`): its own port only, bounded labels, and the
//! gauges and histograms that issue 5 asks for.

use crate::common::{
    TestApp, fail_three_times, listening_ports, metric_samples, metric_value, scrape_metrics,
    sign_in, sign_up, submit_form,
};

const METRICS: &[&str] = &["--metrics-bind", "127.0.0.1:0"];

fn requests<'a>(route: &'a str, method: &'a str, status: &'a str) -> [(&'a str, &'a str); 3] {
    [("route", route), ("method", method), ("status", status)]
}

#[tokio::test]
async fn metrics_are_served_on_their_own_port_only() {
    let app = TestApp::spawn(METRICS);
    let base = app.metrics_address().expect("metrics address logged");
    assert_ne!(base, app.address, "a port of its own");

    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text:\n{text}");
    for (family, kind) in [
        ("gatehouse_kdf_queue_depth", "gauge"),
        ("gatehouse_kdf_wait_seconds", "histogram"),
        ("gatehouse_active_sessions", "gauge"),
        ("gatehouse_db_errors", "counter"),
        ("gatehouse_locks", "counter"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind} in\n{text}"
        );
    }
    let rss = metric_value(&text, "process_resident_memory_bytes", &[]).unwrap();
    assert!(rss > 1_000_000.0, "resident memory {rss} bytes");
    assert_eq!(
        metric_value(&text, "gatehouse_db_errors_total", &[]),
        Some(0.0)
    );

    // Only /metrics there; and the public site does not serve it.
    let other = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(other.status(), 404);
    let public = app.client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "the public port hides /metrics");

    let metrics_port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let mut want = vec![app.port, metrics_port];
    want.sort_unstable();
    assert_eq!(listening_ports(app.pid().unwrap()), want);
}

#[tokio::test]
async fn without_the_flag_no_metrics_listener_opens() {
    let app = TestApp::spawn(&[]);
    assert_eq!(app.metrics_address(), None, "log:\n{}", app.log());
    assert_eq!(
        listening_ports(app.pid().unwrap()),
        vec![app.port],
        "only the public port"
    );
    let r = app.client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern() {
    let app = TestApp::spawn(METRICS);
    let client = app.client();
    let get = |path: &str| client.get(app.url(path)).send();

    assert_eq!(get("/welcome").await.unwrap().status(), 303);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let page = get("/sign-in").await.unwrap().text().await.unwrap();
    let css = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|href| href.starts_with("/static/"))
        .expect("a stylesheet link")
        .replace("&#63;", "?")
        .replace("&#61;", "=");
    assert_eq!(get(&css).await.unwrap().status(), 200, "{css}");
    // Unknown paths, random each time, some beside real routes: all land in one `unmatched`
    // series.
    let random: Vec<String> = ["/no-such-", "/static/a/", "/welcome/"]
        .iter()
        .map(|prefix| format!("{prefix}{}", uuid::Uuid::new_v4()))
        .collect();
    for path in &random {
        assert_eq!(get(path).await.unwrap().status(), 404);
    }
    let post = client.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    let odd = client
        .request(brew, app.url("/welcome"))
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), 405);

    let text = scrape_metrics(&app).await;
    let total = "gatehouse_http_requests_total";
    let count = "gatehouse_http_request_duration_seconds_count";
    for (labels, n) in [
        (requests("/welcome", "GET", "303"), 1.0),
        (requests("/healthz", "GET", "200"), 1.0),
        (requests("/sign-in", "GET", "200"), 1.0),
        (requests("/static/{name}", "GET", "200"), 1.0),
        (requests("unmatched", "GET", "404"), 3.0),
        (requests("/healthz", "POST", "405"), 1.0),
        (requests("/welcome", "other", "405"), 1.0),
    ] {
        assert_eq!(metric_value(&text, total, &labels), Some(n), "{labels:?}");
        assert_eq!(metric_value(&text, count, &labels), Some(n), "{labels:?}");
    }
    let mut le = requests("/welcome", "GET", "303").to_vec();
    le.push(("le", "+Inf"));
    assert_eq!(
        metric_value(&text, "gatehouse_http_request_duration_seconds_bucket", &le),
        Some(1.0)
    );
    for path in &random {
        assert!(!text.contains(path.as_str()), "{path} became a label");
    }
    let routes: std::collections::BTreeSet<String> = metric_samples(&text, total)
        .into_iter()
        .flat_map(|(labels, _)| labels)
        .filter(|(k, _)| k == "route")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        routes.into_iter().collect::<Vec<_>>(),
        [
            "/healthz",
            "/sign-in",
            "/static/{name}",
            "/welcome",
            "unmatched"
        ]
    );

    // Scrapes are served by the other server and are not counted as site requests.
    let again = scrape_metrics(&app).await;
    assert_eq!(
        metric_value(&again, total, &requests("/welcome", "GET", "303")),
        Some(1.0)
    );
}

#[tokio::test]
async fn active_sessions_follow_sign_up_sign_in_and_sign_out() {
    let app = TestApp::spawn(METRICS);
    let sessions = |text: &str| metric_value(text, "gatehouse_active_sessions", &[]);
    assert_eq!(sessions(&scrape_metrics(&app).await), Some(0.0));

    let first = app.client();
    sign_up(&app, &first, "metered", "correct horse battery").await;
    assert_eq!(sessions(&scrape_metrics(&app).await), Some(1.0));

    let second = app.client();
    let r = sign_in(&app, &second, "metered", "correct horse battery").await;
    assert_eq!(r.status(), 303);
    assert_eq!(sessions(&scrape_metrics(&app).await), Some(2.0));

    let r = submit_form(&app, &first, "/sign-out", "/sign-out", &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(sessions(&scrape_metrics(&app).await), Some(1.0));
}

#[tokio::test]
async fn kdf_metrics_move_with_password_work() {
    let app = TestApp::spawn(METRICS);
    let before = scrape_metrics(&app).await;
    assert_eq!(
        metric_value(&before, "gatehouse_kdf_wait_seconds_count", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&before, "gatehouse_kdf_queue_depth", &[]),
        Some(0.0)
    );

    let client = app.client();
    sign_up(&app, &client, "hasher", "correct horse battery").await;
    let wrong = sign_in(&app, &app.client(), "hasher", "wrong horse battery").await;
    assert_eq!(wrong.status(), 401);

    let after = scrape_metrics(&app).await;
    let waited = metric_value(&after, "gatehouse_kdf_wait_seconds_count", &[]).unwrap();
    assert!(
        waited >= 2.0,
        "one KDF job per hash and per check, got {waited}"
    );
    let inf = metric_value(
        &after,
        "gatehouse_kdf_wait_seconds_bucket",
        &[("le", "+Inf")],
    );
    assert_eq!(inf, Some(waited));
    assert_eq!(
        metric_value(&after, "gatehouse_kdf_queue_depth", &[]),
        Some(0.0),
        "nothing waits once the answers are in"
    );
}

#[tokio::test]
async fn sigterm_stops_both_servers_cleanly() {
    let mut app = TestApp::spawn(METRICS);
    scrape_metrics(&app).await;
    let status = app.terminate();
    assert!(status.success(), "{status:?}; log:\n{}", app.log());
}

#[tokio::test]
async fn sign_in_outcomes_locks_and_throttles_are_counted() {
    let app = TestApp::spawn(&["--metrics-bind", "127.0.0.1:0", "--ip-failures", "6"]);
    let c = app.client();
    sign_up(&app, &c, "mia", "mia-password").await;
    assert_eq!(
        sign_in(&app, &app.client(), "mia", "mia-password")
            .await
            .status(),
        303
    );
    fail_three_times(&app, &app.client(), "mia").await;
    assert_eq!(
        sign_in(&app, &app.client(), "mia", "mia-password")
            .await
            .status(),
        429
    );
    // 4 failures from 127.0.0.1 so far; two more reach the address limit.
    for _ in 0..2 {
        sign_in(&app, &app.client(), "nobody", "wrong-password").await;
    }
    assert_eq!(
        sign_in(&app, &app.client(), "other", "x-password")
            .await
            .status(),
        429
    );
    let text = scrape_metrics(&app).await;
    let count =
        |name: &str, labels: &[(&str, &str)]| metric_value(&text, name, labels).unwrap_or(0.0);
    // The sign-up's own sign-in and the explicit one.
    assert_eq!(
        count("gatehouse_sign_ins_total", &[("outcome", "ok")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        count("gatehouse_sign_ins_total", &[("outcome", "failed")]),
        5.0,
        "{text}"
    );
    assert_eq!(
        count("gatehouse_sign_ins_total", &[("outcome", "locked")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        count("gatehouse_sign_ins_total", &[("outcome", "throttled")]),
        1.0,
        "{text}"
    );
    assert_eq!(count("gatehouse_locks_total", &[]), 1.0, "{text}");
    assert_eq!(
        count("gatehouse_throttles_total", &[("event", "sign_in")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(
            "gatehouse_events_total",
            &[("event", "sign_up"), ("outcome", "ok")]
        ),
        1.0
    );
}
