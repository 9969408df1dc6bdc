//! `GET /health`: the service and its dependencies — the database, and each upstream.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use refreshd_core::TokenDigest;
use serde_json::{Value, json};

use crate::state::Broker;
use crate::upstream::Upstream;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 when the database answers (upstream trouble makes it `degraded`, not down); 503 when
/// the database does not.
#[utoipa::path(get, path = "/health", operation_id = "brokerHealth", tag = "Broker",
    responses(
        (status = 200, description = "The database answers; `status` is `ok` or `degraded`", body = crate::api_doc::HealthReport),
        (status = 503, description = "The database does not answer; `status` is `unavailable`", body = crate::api_doc::HealthReport),
    ))]
pub async fn health(State(broker): State<Broker>) -> (StatusCode, Json<Value>) {
    let database = match broker.0.store.find_api_key(TokenDigest::of("")).await {
        Ok(_) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "health: database unavailable");
            "unavailable"
        }
    };
    // Probed at once, so /health takes at most one probe timeout.
    let (github, google) = tokio::join!(
        probe(&broker, Upstream::Github),
        probe(&broker, Upstream::Google)
    );
    let upstreams = serde_json::Map::from_iter([
        ("github".into(), json!(github)),
        ("google".into(), json!(google)),
    ]);
    let degraded = upstreams.values().any(|v| v == "unreachable");
    let (status, state) = match (database, degraded) {
        ("ok", false) => (StatusCode::OK, "ok"),
        ("ok", true) => (StatusCode::OK, "degraded"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let body = json!({ "success": status == StatusCode::OK, "status": state, "database": database, "upstreams": upstreams });
    (status, Json(body))
}

/// `not_configured`, `reachable` (it answered HTTP at all) or `unreachable`.
async fn probe(broker: &Broker, upstream: Upstream) -> &'static str {
    let Ok(client) = broker.upstream(upstream) else {
        return "not_configured";
    };
    let url = match upstream {
        Upstream::Github => &broker.0.settings.github.token_url,
        Upstream::Google => &broker.0.settings.google.token_url,
    };
    match client.http.head(url).timeout(PROBE_TIMEOUT).send().await {
        Ok(_) => "reachable",
        Err(_) => "unreachable",
    }
}
