//! `POST /auth/github/refresh` and `POST /auth/google/refresh`: the broker's refresh endpoints.
//!
//! A refresh first looks in the replay vault (same caller, same old token, inside the
//! window: the same answer, no upstream call), then joins or starts this instance's single
//! flight for that token. The flight takes the token's lease in the database, so of all
//! instances one calls upstream at a time; it stores its answer in the vault before it
//! releases the lease or answers anyone, so nobody can miss it there.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use refreshd_core::TokenDigest;
use tokio::time::Instant;

use crate::auth::Caller;
use crate::error::BrokerError;
use crate::lease::{self, Lease};
use crate::state::Broker;
use crate::upstream::{Refreshed, Upstream};
use crate::vault::Vault;
use crate::wire::{Body, GithubRefreshed, GoogleRefreshed, RefreshRequest};

/// Refresh a GitHub token. Concurrent calls with one token make one upstream call; the same
/// call again inside the replay window gets the same answer without one.
#[utoipa::path(post, path = "/auth/github/refresh", operation_id = "brokerGithubRefresh", tag = "Broker", security(("bearer" = [])),
    request_body = RefreshRequest,
    responses((status = 200, description = "Refreshed", body = GithubRefreshed), crate::error::BrokerErrors))]
pub async fn github(
    State(broker): State<Broker>,
    caller: Caller,
    Body(request): Body<RefreshRequest>,
) -> Result<Json<GithubRefreshed>, BrokerError> {
    let refreshed =
        refresh_through(&broker, &caller, Upstream::Github, &request.refresh_token).await?;
    Ok(Json(refreshed.into()))
}

/// Refresh a Google token. Concurrent calls with one token make one upstream call; the same
/// call again inside the replay window gets the same answer without one.
#[utoipa::path(post, path = "/auth/google/refresh", operation_id = "brokerGoogleRefresh", tag = "Broker", security(("bearer" = [])),
    request_body = RefreshRequest,
    responses((status = 200, description = "Refreshed", body = GoogleRefreshed), crate::error::BrokerErrors))]
pub async fn google(
    State(broker): State<Broker>,
    caller: Caller,
    Body(request): Body<RefreshRequest>,
) -> Result<Json<GoogleRefreshed>, BrokerError> {
    let refreshed =
        refresh_through(&broker, &caller, Upstream::Google, &request.refresh_token).await?;
    Ok(Json(GoogleRefreshed::new(refreshed, request.refresh_token)))
}

pub(crate) async fn refresh_through(
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

pub(crate) async fn call_upstream(
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
