//! The HTTP face of [`crate::metrics`]: the request middleware for the public site and the
//! private `/metrics` server on its own address (`--metrics-bind`), so the public port never
//! exposes the registry.

use std::borrow::Cow;
use std::future::{Future, Ready, ready};
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::metrics::{self, CONTENT_TYPE, method_label};
use crate::state::AppState;

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
            .then(|| (Instant::now(), method_label(req.method().as_str())));
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
            metrics::request(route, method, status.as_u16(), started.elapsed());
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
    metrics::set_kdf_queue_depth(state.kdf.waiting());
    metrics::refresh_resident_memory();
    let now = crate::clock::now_ms();
    // A count over the expiry index, on the blocking pool like every other store call that
    // is not a point read.
    match state.store.count_live_sessions(now).await {
        Ok(n) => metrics::set_active_sessions(n),
        Err(e) => {
            metrics::db_error();
            tracing::warn!("metrics: counting sessions failed: {e}");
        }
    }
    match state.store.outbox_depth().await {
        Ok(n) => metrics::set_outbox_depth(n),
        Err(e) => {
            metrics::db_error();
            tracing::warn!("metrics: counting the outbox failed: {e}");
        }
    }
    match metrics::encode() {
        Ok(body) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// The private metrics server on the `--metrics-bind` listener (bound by the caller, which
/// names the address if that fails): one worker, `GET /metrics` only, no signal handling of
/// its own (the caller stops it with the public server).
pub fn server(listener: TcpListener, state: web::Data<AppState>) -> std::io::Result<Server> {
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
