//! The refresher: on every instance, a task that refreshes connections before anyone asks
//! (their access token about to expire, or idle past the keepalive), so `GET .../token` finds
//! a fresh one stored.
//!
//! Each round claims due connections in batches (`Connections::claim_due`; instances on one
//! database never get one connection twice while its claim lasts; each claim is kept by
//! `claim::Kept` until its refresh ends), refreshes each through the API's own
//! `fresh::refresh_held`, at most `refresh_concurrency` at once per upstream, and counts the
//! outcome in `refreshd_connection_refreshes_total`.

use std::sync::Arc;
use std::time::Duration;

use refreshd_core::{ConnectionStatus, Upstream};
use refreshd_store::Connection;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::claim;
use super::fresh::{self, Attempt};
use crate::error::BrokerError;
use crate::state::Broker;

/// Refreshes due connections every `interval`, until the task is aborted.
pub async fn run(broker: Broker, interval: Duration) {
    let per_upstream = broker.0.settings.refresh_concurrency.max(1);
    let limits = Limits {
        github: Arc::new(Semaphore::new(per_upstream)),
        google: Arc::new(Semaphore::new(per_upstream)),
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = refresh_due(&broker, &limits, per_upstream).await {
            tracing::warn!(error = %e, "the connection refresher's round failed; will retry");
        }
    }
}

/// One semaphore per upstream: a slow or failing one does not hold up the other.
struct Limits {
    github: Arc<Semaphore>,
    google: Arc<Semaphore>,
}

impl Limits {
    fn of(&self, upstream: Upstream) -> Arc<Semaphore> {
        match upstream {
            Upstream::Github => self.github.clone(),
            Upstream::Google => self.google.clone(),
        }
    }
}

/// Claims and refreshes batches of due connections until none is left, or a batch changed
/// nothing (all of it for an upstream this instance has no client for).
async fn refresh_due(
    broker: &Broker,
    limits: &Limits,
    per_upstream: usize,
) -> Result<(), BrokerError> {
    // What both upstreams run at once: each batch keeps them busy.
    let batch = (2 * per_upstream) as i64;
    loop {
        let holder = refreshd_core::random::bytes::<16>();
        let now = broker.0.clock.now();
        let claimed = broker
            .0
            .store
            .claim_due(holder, claim::term_from(now), now, batch)
            .await?;
        let full = claimed.len() as i64 == batch;
        let mut running = JoinSet::new();
        for connection in claimed {
            let (broker, limit) = (broker.clone(), limits.of(connection.upstream));
            running.spawn(async move {
                let _kept = claim::Kept::start(&broker, &connection.id, holder);
                let _permit = limit.acquire_owned().await.expect("never closed");
                refresh_one(&broker, connection, holder).await
            });
        }
        let mut changed = false;
        while let Some(done) = running.join_next().await {
            changed |= done.unwrap_or(false);
        }
        if !full || !changed {
            return Ok(());
        }
    }
}

/// Refreshes one claimed connection and counts how it went; whether anything was recorded.
async fn refresh_one(broker: &Broker, connection: Connection, holder: [u8; 16]) -> bool {
    let provider = fresh::upstream_of(connection.upstream).name();
    // A claim lost while waiting for a permit is not refreshed on.
    let renewed = broker
        .0
        .store
        .renew_claim(
            &connection.id,
            holder,
            claim::term_from(broker.0.clock.now()),
        )
        .await;
    match renewed {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "could not renew a claim on a connection; skipped");
            return false;
        }
    }
    let outcome = match fresh::refresh_held(broker, &connection, holder).await {
        Ok(Attempt::Refreshed(_)) => "refreshed",
        Ok(Attempt::NothingToRefreshWith) | Ok(Attempt::Failed { after: None, .. }) => {
            return false;
        }
        Ok(Attempt::Failed { error, after }) => {
            let broken = after.is_some_and(|c| c.status == ConnectionStatus::Broken);
            tracing::info!(
                connection = connection.id.as_str(),
                provider,
                error = %error,
                broken,
                "the refresher could not refresh a connection"
            );
            if broken {
                "broken"
            } else if error.outcome_unknown() {
                "unknown"
            } else {
                "backing_off"
            }
        }
        Err(e) => {
            // The store failed: the claim runs out and the connection is due again.
            tracing::warn!(error = %e, "the refresher could not save a connection's refresh");
            return false;
        }
    };
    metrics::counter!(
        "refreshd_connection_refreshes_total",
        "provider" => provider,
        "outcome" => outcome
    )
    .increment(1);
    true
}
