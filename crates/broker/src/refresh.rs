//! `POST /auth/github/refresh` and `POST /auth/google/refresh` (seeds 000 and 001).
//!
//! A refresh first looks in the replay vault (same caller, same old token, inside the
//! window: the same answer, no upstream call), then joins or starts the single flight for
//! that token. The flight stores its answer in the vault before anyone can miss it there.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use refreshd_core::TokenDigest;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::BrokerError;
use crate::state::Broker;
use crate::upstream::{Refreshed, Upstream};
use crate::vault::Vault;

/// Longest token accepted from a caller; real ones are far shorter.
const MAX_TOKEN_LEN: usize = 4096;

/// The JSON object of a request body; anything else is a clear 400 (or 413).
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, BrokerError> {
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => BrokerError::TooLarge,
        _ => BrokerError::InvalidRequest("the request body could not be read".into()),
    })?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if !media
        .as_deref()
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"))
    {
        return Err(BrokerError::InvalidRequest(
            "Content-Type must be application/json".into(),
        ));
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(BrokerError::InvalidRequest(
            "the body must be a JSON object".into(),
        )),
    }
}

/// A required, non-empty string field.
pub(crate) fn string_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, BrokerError> {
    match body.get(name).and_then(Value::as_str) {
        Some(value) if !value.is_empty() && value.len() <= MAX_TOKEN_LEN => Ok(value),
        _ => Err(BrokerError::InvalidRequest(format!(
            "\"{name}\" is required: a non-empty string"
        ))),
    }
}

/// Refresh a GitHub token (seed 000). Concurrent calls with one token make one upstream call;
/// the same call again inside the replay window gets the same answer without one.
#[utoipa::path(post, path = "/auth/github/refresh", tag = "Broker", security(("bearer" = [])),
    request_body = crate::api_doc::RefreshRequest,
    responses((status = 200, description = "Refreshed", body = crate::api_doc::GithubRefreshed),
        (status = 400, description = "`invalid_request` or `invalid_grant`", body = crate::api_doc::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = crate::api_doc::ErrorEnvelope),
        (status = 502, description = "`upstream_error`", body = crate::api_doc::ErrorEnvelope),
        (status = 503, description = "`provider_not_configured` or `unavailable`", body = crate::api_doc::ErrorEnvelope),
        (status = 504, description = "`upstream_timeout`", body = crate::api_doc::ErrorEnvelope)))]
pub async fn github(
    State(broker): State<Broker>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, BrokerError> {
    let body = json_body(&headers, body)?;
    let refresh_token = string_field(&body, "refresh_token")?;
    let refreshed = refresh_through(&broker, &caller, Upstream::Github, refresh_token).await?;
    Ok(Json(json!({
        "success": true,
        "token": refreshed.token,
        "accessToken": refreshed.token,
        "refreshToken": refreshed.refresh_token,
        "expiresAt": refreshed.expires_at,
    })))
}

/// Refresh a Google token (seed 001).
#[utoipa::path(post, path = "/auth/google/refresh", tag = "Broker", security(("bearer" = [])),
    request_body = crate::api_doc::RefreshRequest,
    responses((status = 200, description = "Refreshed", body = crate::api_doc::GoogleRefreshed),
        (status = 400, description = "`invalid_request` or `invalid_grant`", body = crate::api_doc::ErrorEnvelope),
        (status = 401, description = "`unauthorized`", body = crate::api_doc::ErrorEnvelope),
        (status = 502, description = "`upstream_error`", body = crate::api_doc::ErrorEnvelope),
        (status = 503, description = "`provider_not_configured` or `unavailable`", body = crate::api_doc::ErrorEnvelope),
        (status = 504, description = "`upstream_timeout`", body = crate::api_doc::ErrorEnvelope)))]
pub async fn google(
    State(broker): State<Broker>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, BrokerError> {
    let body = json_body(&headers, body)?;
    let refresh_token = string_field(&body, "refresh_token")?;
    let refreshed = refresh_through(&broker, &caller, Upstream::Google, refresh_token).await?;
    // Google normally returns no new refresh token: the one sent stays valid.
    let kept = refreshed
        .refresh_token
        .unwrap_or_else(|| refresh_token.to_owned());
    Ok(Json(json!({
        "success": true,
        "token": refreshed.token,
        "refreshToken": kept,
        "expiresAt": refreshed.expires_at,
    })))
}

async fn refresh_through(
    broker: &Broker,
    caller: &Caller,
    upstream: Upstream,
    refresh_token: &str,
) -> Result<Refreshed, BrokerError> {
    broker.upstream(upstream)?;
    let now = broker.0.clock.now();
    let lookup = Vault::lookup(upstream, &caller.id, refresh_token);
    if let Some(answer) = broker
        .0
        .vault
        .get(broker.0.store.as_ref(), lookup, refresh_token, now)
        .await?
    {
        return Ok(answer);
    }
    let flight = TokenDigest::of(&format!("{}\0{refresh_token}", upstream.name()));
    let (in_flight, token) = (broker.clone(), refresh_token.to_owned());
    let (outcome, led) = broker
        .0
        .flights
        .join(flight, move || async move {
            let refreshed = call_upstream(&in_flight, upstream, &token).await?;
            remember(&in_flight, lookup, &token, &refreshed).await;
            Ok(refreshed)
        })
        .await;
    let refreshed = outcome?;
    if !led {
        // A caller that joined someone else's flight gets its own replay entry too.
        remember(broker, lookup, refresh_token, &refreshed).await;
    }
    Ok(refreshed)
}

/// Stores a refresh's answer in the vault. The refresh has happened upstream either way, so a
/// failure here is logged and the answer still returned.
async fn remember(
    broker: &Broker,
    lookup: TokenDigest,
    refresh_token: &str,
    refreshed: &Refreshed,
) {
    let expires_at = broker
        .0
        .clock
        .now()
        .plus_secs(broker.0.settings.replay_window_secs);
    if let Err(e) = broker
        .0
        .vault
        .put(
            broker.0.store.as_ref(),
            lookup,
            refresh_token,
            refreshed,
            expires_at,
        )
        .await
    {
        tracing::warn!(error = %e, "could not store a refresh answer for replay");
    }
}

async fn call_upstream(
    broker: &Broker,
    upstream: Upstream,
    refresh_token: &str,
) -> Result<Refreshed, BrokerError> {
    let client = broker.upstream(upstream)?;
    let url = match upstream {
        Upstream::Github => &broker.0.settings.github.token_url,
        Upstream::Google => &broker.0.settings.google.token_url,
    };
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let (status, body) = client.post_form(url, &form).await?;
    client.read_token_answer(status, &body, broker.0.clock.now().secs())
}
