//! Prometheus metrics: the recorder every crate's `metrics::…!` calls report to, the request
//! counter and latency histogram, and `GET /metrics` on a listener of its own
//! (`metrics_listen`).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use refreshd_store::Store;

/// Latency buckets in seconds, from a cached read to a slow upstream.
const SECONDS: &[f64] = &[
    0.000_25, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];
/// Writes per SQLite transaction (the writer caps a batch at 512).
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed by the first server to start (tests start several in one
/// process; they share it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("refreshd_sqlite_batch_writes".into()),
                    BATCH_SIZES,
                )
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        // Histograms are folded in on upkeep; scrapes do it too, this bounds memory between.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("refreshd-metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("spawning the metrics upkeep thread");
        handle
    })
}

/// Starts recording (idempotent): called when a server starts, so metrics count from then.
pub fn install() {
    handle();
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "refreshd_http_requests_total",
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(
        "refreshd_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route and method."
    );
    describe_counter!(
        "refreshd_grants_total",
        "Token grants at the provider's token endpoints, by dialect, grant type and outcome."
    );
    describe_counter!(
        "refreshd_broker_upstream_calls_total",
        "Broker calls to an upstream token endpoint, by provider and outcome."
    );
    describe_histogram!(
        "refreshd_broker_upstream_call_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of broker calls to an upstream token endpoint, by provider."
    );
    describe_counter!(
        "refreshd_broker_refreshes_total",
        "Broker refresh requests by provider and how they were answered: by starting a single \
         flight on this instance (called; it calls upstream unless it finds the answer in the \
         replay vault first), by joining one in flight (joined), or from the replay vault \
         before any flight (replayed)."
    );
    describe_counter!(
        "refreshd_broker_lease_waits_total",
        "Broker refreshes that found the token's lease held by another flight and waited."
    );
    describe_counter!(
        "refreshd_connection_refreshes_total",
        "Connections the refresher refreshed before anyone asked, by provider and outcome: \
         refreshed, broken (the upstream refused the grant), backing_off (a passing failure) \
         or unknown (no answer after sending; held past the full hold, never re-sent blindly)."
    );
    describe_counter!(
        "refreshd_webhook_deliveries_total",
        "Webhook delivery attempts, by outcome: delivered (answered 2xx), retry (not \
         delivered, attempted again later) or failed (not delivered, the retry schedule ended)."
    );
    describe_histogram!(
        "refreshd_sqlite_batch_writes",
        "Writes committed together in one SQLite transaction."
    );
    describe_histogram!(
        "refreshd_sqlite_commit_seconds",
        metrics::Unit::Seconds,
        "Time to commit one SQLite batch into the WAL."
    );
    describe_histogram!(
        "refreshd_sqlite_sync_seconds",
        metrics::Unit::Seconds,
        "Time to fsync the SQLite WAL (one sync covers every batch committed meanwhile)."
    );
    describe_gauge!(
        "refreshd_sqlite_wal_bytes",
        metrics::Unit::Bytes,
        "Bytes of frames in the SQLite WAL after the last commit."
    );
    describe_histogram!(
        "refreshd_sqlite_wal_restart_seconds",
        metrics::Unit::Seconds,
        "Time the writer spent on the checkpoint that lets the WAL restart (writes wait for it)."
    );
    describe_gauge!(
        "refreshd_postgres_pool_connections",
        "PostgreSQL connections of this instance's pool, open and idle."
    );
    describe_gauge!(
        "refreshd_postgres_pool_max_connections",
        "Most PostgreSQL connections this instance's pool opens."
    );
    describe_histogram!(
        "refreshd_postgres_pool_wait_seconds",
        metrics::Unit::Seconds,
        "Time a request waited for a PostgreSQL connection."
    );
    describe_counter!(
        "refreshd_signin_lockouts_total",
        "Sign-in lockouts, by what was locked (a login from one address, or an address)."
    );
}

/// Counts every request by its route (the pattern, never the path: paths may hold client
/// ids) and times it.
pub async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Any token is a method: only the standard ones become labels, so no client can add series.
    let method: &'static str = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "refreshd_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "refreshd_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    response
}

/// `GET /metrics` in Prometheus's text format, with `store`'s gauges read at each scrape.
pub fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route("/metrics", get(exposition))
        .with_state(store)
}

async fn exposition(State(store): State<Arc<dyn Store>>) -> Response {
    store.record_gauges();
    let mut response = handle().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
