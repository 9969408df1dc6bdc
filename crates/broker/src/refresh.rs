//! `POST /auth/github/refresh` and `POST /auth/google/refresh` (seeds 000 and 001).
//!
//! A refresh first looks in the replay vault (same caller, same old token, inside the
//! window: the same answer, no upstream call), then joins or starts this instance's single
//! flight for that token. The flight takes the token's lease in the database, so of all
//! instances one calls upstream at a time; it stores its answer in the vault before it
//! releases the lease or answers anyone, so nobody can miss it there.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use refreshd_core::TokenDigest;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::auth::Caller;
use crate::error::BrokerError;
use crate::lease::{self, Lease};
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

/// A required, non-empty string field. A missing field and a malformed one are told apart, so
/// a caller who sent a token learns it was the token's form that was refused.
pub(crate) fn string_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, BrokerError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(BrokerError::InvalidRequest(format!(
            "\"{name}\" is required"
        ))),
        // Tokens and codes are printable ASCII; anything else could not travel in a header.
        Some(Value::String(value))
            if !value.is_empty()
                && value.len() <= MAX_TOKEN_LEN
                && value.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(value)
        }
        Some(_) => Err(BrokerError::InvalidRequest(format!(
            "\"{name}\" must be a non-empty string of printable ASCII, at most {MAX_TOKEN_LEN} characters"
        ))),
    }
}

/// Refresh a GitHub token (seed 000). Concurrent calls with one token make one upstream call;
/// the same call again inside the replay window gets the same answer without one.
#[utoipa::path(post, path = "/auth/github/refresh", operation_id = "brokerGithubRefresh", tag = "Broker", security(("bearer" = [])),
    request_body = crate::api_doc::RefreshRequest,
    responses((status = 200, description = "Refreshed", body = crate::api_doc::GithubRefreshed), crate::api_doc::BrokerErrors))]
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
#[utoipa::path(post, path = "/auth/google/refresh", operation_id = "brokerGoogleRefresh", tag = "Broker", security(("bearer" = [])),
    request_body = crate::api_doc::RefreshRequest,
    responses((status = 200, description = "Refreshed", body = crate::api_doc::GoogleRefreshed), crate::api_doc::BrokerErrors))]
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
    let lookup = Vault::lookup(upstream, &caller.id, refresh_token);
    if let Some(answer) = replayed(broker, lookup, refresh_token).await? {
        metrics::counter!("refreshd_broker_refreshes_total", "provider" => upstream.name(), "answer" => "replayed")
            .increment(1);
        return Ok(answer);
    }
    let flight = TokenDigest::of(&format!("{}\0{refresh_token}", upstream.name()));
    let (for_call, for_save) = (broker.clone(), broker.clone());
    let (token, saved_token) = (refresh_token.to_owned(), refresh_token.to_owned());
    // Held from the upstream call until every joined caller's answer is saved.
    let lease = Lease::new(flight);
    let (for_release, held, for_saves) = (broker.clone(), lease.clone(), lease.clone());
    let call =
        move || async move { refresh_once(&for_call, upstream, &lease, lookup, &token).await };
    let save = move |lookups: Vec<TokenDigest>, refreshed: Refreshed| {
        let (broker, token, lease) = (for_save.clone(), saved_token.clone(), for_saves.clone());
        async move {
            for lookup in lookups {
                if !remember(&broker, lookup, &token, &refreshed).await {
                    lease.keep();
                }
            }
        }
    };
    let land = move || async move { held.release(&for_release).await };
    broker
        .0
        .flights
        .join(upstream.name(), flight, lookup, call, save, land)
        .await
}

/// One flight's work, correct across instances. It waits until the vault has this caller's
/// answer (another flight, here or elsewhere, refreshed the token) or the token's lease is
/// free, then takes the lease for the upstream call; the flight releases it once every
/// answer is saved.
async fn refresh_once(
    broker: &Broker,
    upstream: Upstream,
    lease: &Lease,
    lookup: TokenDigest,
    refresh_token: &str,
) -> Result<Refreshed, BrokerError> {
    let give_up = Instant::now() + Duration::from_secs(2 * lease::hold_secs(broker));
    // The first try takes the lease at once; after that a read says when trying may succeed,
    // so a flight waiting on another writes nothing while it waits.
    let mut free = true;
    let mut waited = false;
    loop {
        if free && lease.take(broker).await? {
            break;
        }
        if !waited {
            waited = true;
            metrics::counter!("refreshd_broker_lease_waits_total", "provider" => upstream.name())
                .increment(1);
        }
        // A flight holding the lease saves its answer before releasing it.
        if let Some(answer) = replayed(broker, lookup, refresh_token).await? {
            return Ok(answer);
        }
        if Instant::now() >= give_up {
            return Err(BrokerError::UpstreamTimeout(upstream.name()));
        }
        free = lease.poll(broker).await?;
    }
    // The lease is ours, so no refresh of this token is under way anywhere; one that landed
    // since our last look (here or on another instance) left its answer in the vault.
    if let Some(answer) = replayed(broker, lookup, refresh_token).await? {
        return Ok(answer);
    }
    let called = call_upstream(broker, upstream, refresh_token).await;
    match &called {
        Ok(refreshed) => {
            if !remember(broker, lookup, refresh_token, refreshed).await {
                lease.keep();
            }
        }
        // The token may have been used upstream: no instance re-sends it while the lease lasts.
        Err(e) if e.outcome_unknown() => lease.keep(),
        Err(_) => {}
    }
    called
}

async fn replayed(
    broker: &Broker,
    lookup: TokenDigest,
    refresh_token: &str,
) -> Result<Option<Refreshed>, BrokerError> {
    let now = broker.0.clock.now();
    Ok(broker
        .0
        .vault
        .get(broker.0.store.as_ref(), lookup, refresh_token, now)
        .await?)
}

/// Stores a refresh's answer in the vault; `false` if it could not. The refresh has happened
/// upstream either way, so a failure here is logged and the answer still returned.
async fn remember(
    broker: &Broker,
    lookup: TokenDigest,
    refresh_token: &str,
    refreshed: &Refreshed,
) -> bool {
    let expires_at = broker
        .0
        .clock
        .now()
        .plus_secs(broker.0.settings.replay_window_secs);
    let saved = broker
        .0
        .vault
        .put(
            broker.0.store.as_ref(),
            lookup,
            refresh_token,
            refreshed,
            expires_at,
        )
        .await;
    if let Err(e) = &saved {
        tracing::warn!(error = %e, "could not store a refresh answer for replay");
    }
    saved.is_ok()
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
    let started = std::time::Instant::now();
    let answer = client
        .post_form(url, &form)
        .await
        .and_then(|(status, body)| {
            client.read_token_answer(status, &body, broker.0.clock.now().secs())
        });
    let outcome = match &answer {
        Ok(_) => "refreshed",
        Err(BrokerError::InvalidGrant { .. }) => "refused",
        Err(e) if e.outcome_unknown() => "unknown",
        Err(_) => "failed",
    };
    metrics::histogram!("refreshd_broker_upstream_call_duration_seconds", "provider" => upstream.name())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "refreshd_broker_upstream_calls_total",
        "provider" => upstream.name(),
        "outcome" => outcome
    )
    .increment(1);
    answer
}
