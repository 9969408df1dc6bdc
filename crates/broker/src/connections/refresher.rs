//! The refresher: on every instance, a task that refreshes connections before anyone asks
//! (their access token about to expire, or idle past the keepalive), so `GET .../token` finds
//! a fresh one stored.
//!
//! One loop per upstream this instance has a client for, so a slow or failing upstream holds
//! up only its own connections. Each keeps `refresh_concurrency` refreshes running, claiming
//! its upstream's due connections in batches (`Connections::claim_due`; instances on one
//! database never get one connection twice while its claim lasts; each claim is kept by
//! `claim::Kept` from the claim until its refresh ends), refreshes each through the API's own
//! `fresh::refresh_held`, and counts the outcome in `refreshd_connection_refreshes_total`.
//! Stopping (`Refresher::stop`) claims nothing more and lets the refreshes in flight finish
//! (for up to the full hold plus 10 s), so none is cut off between the upstream's answer and
//! its save unless the database stalls past that.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use refreshd_core::{ConnectionId, ConnectionStatus, Upstream};
use refreshd_store::Connection;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::claim;
use super::fresh::{self, Attempt};
use crate::error::BrokerError;
use crate::state::Broker;

/// The running refresher, and how to stop it.
pub struct Refresher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// How long stopping waits for the refreshes in flight: the broker's full hold (the
    /// longest upstream call and its margin), and 10 s more for saves retried.
    patience: Duration,
}

impl Refresher {
    /// Starts refreshing due connections every `interval`.
    pub fn start(broker: Broker, interval: Duration) -> Self {
        let (stop, stopping) = watch::channel(false);
        let patience = Duration::from_secs(crate::lease::hold_secs(&broker) + 10);
        Self {
            stop,
            task: tokio::spawn(run(broker, interval, stopping)),
            patience,
        }
    }

    /// Claims nothing more and waits (at most `patience`) for the refreshes in flight; what
    /// still runs then is cut off.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(self.patience, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("the connection refresher did not finish its refreshes in time");
            self.task.abort();
        }
    }
}

/// The loops, one per upstream this instance has a client for; aborting this aborts them.
async fn run(broker: Broker, interval: Duration, stopping: watch::Receiver<bool>) {
    let mut loops = JoinSet::new();
    for upstream in Upstream::ALL {
        if broker.upstream(fresh::upstream_of(upstream)).is_ok() {
            let (broker, stopping) = (broker.clone(), stopping.clone());
            loops.spawn(refresh_periodically(broker, upstream, interval, stopping));
        }
    }
    while loops.join_next().await.is_some() {}
}

/// Refreshes `upstream`'s due connections every `interval` until stopped.
async fn refresh_periodically(
    broker: Broker,
    upstream: Upstream,
    interval: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = refresh_due(&broker, upstream, &stopping).await {
            tracing::warn!(error = %e, "the connection refresher's round failed; will retry");
        }
    }
}

/// One round: keeps `refresh_concurrency` refreshes of `upstream`'s due connections running
/// until none is left, one comes round again (refreshed or failed connections are no longer
/// due, so that one changed nothing), or the refresher stops. Connections are claimed twice
/// the slots at a time (a claim is a statement, and on PostgreSQL a commit, of its own), the
/// next batch as soon as the last one has all started; each claim is kept from the start.
async fn refresh_due(
    broker: &Broker,
    upstream: Upstream,
    stopping: &watch::Receiver<bool>,
) -> Result<(), BrokerError> {
    let slots = broker.0.settings.refresh_concurrency.max(1);
    let batch = 2 * slots;
    let mut running = JoinSet::new();
    let mut queued: VecDeque<(Connection, [u8; 16], claim::Kept)> = VecDeque::new();
    let mut seen: HashSet<ConnectionId> = HashSet::new();
    let mut more = true;
    loop {
        let stopped = *stopping.borrow();
        if queued.is_empty() && more && !stopped {
            let holder = refreshd_core::random::bytes::<16>();
            let now = broker.0.clock.now();
            let claimed = broker
                .0
                .store
                .claim_due(
                    &[upstream],
                    holder,
                    claim::term_from(now),
                    now,
                    batch as i64,
                )
                .await;
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(e) => {
                    // What runs finishes; the next round claims again.
                    while running.join_next().await.is_some() {}
                    return Err(e.into());
                }
            };
            more = claimed.len() == batch;
            for connection in claimed {
                if !seen.insert(connection.id.clone()) {
                    more = false;
                    release(broker, &connection, holder).await;
                    continue;
                }
                let kept = claim::Kept::start(broker, &connection.id, holder);
                queued.push_back((connection, holder, kept));
            }
        }
        let stopped = *stopping.borrow();
        while running.len() < slots && !stopped {
            let Some((connection, holder, kept)) = queued.pop_front() else {
                break;
            };
            if !kept.holds() {
                // Its renewals failed while it waited: another instance may have it now.
                tracing::warn!(
                    connection = connection.id.as_str(),
                    "a queued connection's claim may have lapsed; left for the next round"
                );
                drop(kept);
                release(broker, &connection, holder).await;
                continue;
            }
            let broker = broker.clone();
            running.spawn(async move {
                let _kept = kept;
                refresh_one(&broker, connection, holder).await;
            });
        }
        if running.join_next().await.is_none() && (stopped || !more) {
            for (connection, holder, kept) in queued {
                drop(kept);
                release(broker, &connection, holder).await;
            }
            return Ok(());
        }
    }
}

/// Ends a claim the refresher will not use.
async fn release(broker: &Broker, connection: &Connection, holder: [u8; 16]) {
    let _ = broker.0.store.release_claim(&connection.id, holder).await;
}

/// Refreshes one claimed connection and counts how it went.
async fn refresh_one(broker: &Broker, connection: Connection, holder: [u8; 16]) {
    let provider = fresh::upstream_of(connection.upstream).name();
    let outcome = match fresh::refresh_held(broker, &connection, holder).await {
        Ok(Attempt::Refreshed(_)) => "refreshed",
        Ok(Attempt::Unsaved(_)) => "unsaved",
        Ok(Attempt::NothingToRefreshWith) | Ok(Attempt::Failed { after: None, .. }) => return,
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
            return;
        }
    };
    metrics::counter!(
        "refreshd_connection_refreshes_total",
        "provider" => provider,
        "outcome" => outcome
    )
    .increment(1);
}
