//! `GET /health`: the service and its dependencies — the database, and each upstream.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use refreshd_core::TokenDigest;

use crate::state::Broker;
use crate::upstream::Upstream;
use crate::wire::{DatabaseHealth, HealthReport, HealthStatus, UpstreamHealth, UpstreamsHealth};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 when the database answers (upstream trouble makes it `degraded`, not down); 503 when
/// the database does not.
#[utoipa::path(get, path = "/health", operation_id = "brokerHealth", tag = "Broker",
    responses(
        (status = 200, description = "The database answers; `status` is `ok` or `degraded`", body = HealthReport),
        (status = 503, description = "The database does not answer; `status` is `unavailable`", body = HealthReport),
    ))]
pub async fn health(State(broker): State<Broker>) -> (StatusCode, Json<HealthReport>) {
    let database = match broker.0.store.find_api_key(TokenDigest::of("")).await {
        Ok(_) => DatabaseHealth::Ok,
        Err(e) => {
            tracing::warn!(error = %e, "health: database unavailable");
            DatabaseHealth::Unavailable
        }
    };
    // Probed at once, so /health takes at most one probe timeout.
    let (github, google) = tokio::join!(
        probe(&broker, Upstream::Github),
        probe(&broker, Upstream::Google)
    );
    let degraded = [github, google].contains(&UpstreamHealth::Unreachable);
    let (status, state) = match (database, degraded) {
        (DatabaseHealth::Ok, false) => (StatusCode::OK, HealthStatus::Ok),
        (DatabaseHealth::Ok, true) => (StatusCode::OK, HealthStatus::Degraded),
        (DatabaseHealth::Unavailable, _) => {
            (StatusCode::SERVICE_UNAVAILABLE, HealthStatus::Unavailable)
        }
    };
    let report = HealthReport {
        database,
        status: state,
        success: status == StatusCode::OK,
        upstreams: UpstreamsHealth { github, google },
    };
    (status, Json(report))
}

/// Whether the upstream is configured, and if so whether it answers HTTP at all.
async fn probe(broker: &Broker, upstream: Upstream) -> UpstreamHealth {
    let Ok(client) = broker.upstream(upstream) else {
        return UpstreamHealth::NotConfigured;
    };
    let url = match upstream {
        Upstream::Github => &broker.0.settings.github.token_url,
        Upstream::Google => &broker.0.settings.google.token_url,
    };
    match client.http.head(url).timeout(PROBE_TIMEOUT).send().await {
        Ok(_) => UpstreamHealth::Reachable,
        Err(_) => UpstreamHealth::Unreachable,
    }
}
