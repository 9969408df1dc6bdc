//! A flight's claim on one refresh token across instances: a lease row in the database, so of
//! all instances one calls upstream with a token at a time.
//!
//! The holder renews it every second while it works, so a holder that dies (a crash, a
//! SIGKILL) holds the token for a few seconds only, well inside the grace window upstreams
//! give a retry; a holder that must not let anyone try the token soon (the upstream's outcome
//! is unknown) extends it for the full hold instead of releasing it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use refreshd_core::TokenDigest;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::BrokerError;
use crate::state::Broker;

/// One flight's lease on one token: take it, keep it if need be, release it when the flight
/// lands. Clones share the lease.
#[derive(Clone)]
pub struct Lease {
    key: TokenDigest,
    holder: [u8; 16],
    /// Set when another instance must not try the token before the lease expires: the
    /// upstream's outcome is unknown, or an answer could not be saved for replay.
    kept: Arc<AtomicBool>,
    /// While the lease is held, the task renewing it. Only the flight's clones of the lease
    /// hold this; the task watches it weakly, so a flight that panicked before landing stops
    /// the renewals and leaves a lease that lapses.
    renewals: Arc<Mutex<Option<Renewals>>>,
}

/// The task renewing a lease, and how to tell it the flight landed.
type Renewals = (Arc<Notify>, JoinHandle<()>);

/// A lease's term from its last renewal: how long a dead holder blocks the token (4 to 5 s:
/// times are whole seconds).
pub const LEASE_TERM_SECS: i64 = 5;
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// How often a flight that finds the token's lease taken looks again.
const LEASE_POLL: Duration = Duration::from_millis(20);

/// How much longer than the longest upstream call a lease lasts: time to save the answers
/// (each save may wait up to 5 s for a database connection).
const LEASE_MARGIN_SECS: u64 = 15;

/// How long a lease is kept when the upstream's outcome is unknown, and how long a flight
/// waits for another's: the longest upstream call, and the saves after it.
pub fn hold_secs(broker: &Broker) -> u64 {
    crate::upstream::longest_call_secs(&broker.0.settings) + LEASE_MARGIN_SECS
}

impl Lease {
    /// A lease on `key` (the token, digested), not yet taken.
    pub fn new(key: TokenDigest) -> Self {
        Self {
            key,
            holder: refreshd_core::random::bytes::<16>(),
            kept: Arc::default(),
            renewals: Arc::default(),
        }
    }

    /// Takes the lease if it is free, and then renews it every second until the flight lands.
    pub async fn take(&self, broker: &Broker) -> Result<bool, BrokerError> {
        let now = broker.0.clock.now();
        let taken = broker
            .0
            .store
            .take_lease(self.key, self.holder, now.plus_secs(LEASE_TERM_SECS), now)
            .await?;
        if taken {
            let landed = Arc::new(Notify::new());
            let flying = Arc::downgrade(&self.renewals);
            let renewing = tokio::spawn(Self::renew(
                (self.key, self.holder),
                broker.clone(),
                landed.clone(),
                flying,
            ));
            *self.renewals.lock().unwrap_or_else(|p| p.into_inner()) = Some((landed, renewing));
        }
        Ok(taken)
    }

    /// Waits a moment, then reads whether the lease is free (a read: a flight waiting on another
    /// writes nothing while it waits).
    pub async fn poll(&self, broker: &Broker) -> Result<bool, BrokerError> {
        tokio::time::sleep(LEASE_POLL).await;
        let free = broker
            .0
            .store
            .lease_free(self.key, broker.0.clock.now())
            .await?;
        Ok(free)
    }

    async fn renew(
        (key, holder): (TokenDigest, [u8; 16]),
        broker: Broker,
        landed: Arc<Notify>,
        flying: Weak<Mutex<Option<Renewals>>>,
    ) {
        loop {
            tokio::select! {
                () = landed.notified() => return,
                () = tokio::time::sleep(RENEW_EVERY) => {}
            }
            if flying.strong_count() == 0 {
                return;
            }
            let until = broker.0.clock.now().plus_secs(LEASE_TERM_SECS);
            match broker.0.store.renew_lease(key, holder, until).await {
                Ok(true) => {}
                Ok(false) => {
                    // Only if a renewal was late by the whole term (a database stall): another
                    // flight may now call upstream with this token too.
                    tracing::warn!("a refresh lease lapsed while its upstream call ran");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "could not renew a refresh lease; retrying"),
            }
        }
    }

    /// Holds the lease until it expires instead of releasing it.
    pub fn keep(&self) {
        self.kept.store(true, Ordering::SeqCst);
    }

    /// If the lease was taken: stops the renewals, then releases the lease, or extends it for
    /// the full hold if kept.
    pub async fn release(&self, broker: &Broker) {
        let renewals = self
            .renewals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some((landed, renewing)) = renewals else {
            return;
        };
        landed.notify_one();
        let _ = renewing.await;
        let store = &broker.0.store;
        if self.kept.load(Ordering::SeqCst) {
            let until = broker.0.clock.now().plus_secs(hold_secs(broker) as i64);
            match store.renew_lease(self.key, self.holder, until).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "a refresh lease whose outcome is unknown had already lapsed; it could not be kept"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not extend a refresh lease whose outcome is unknown"
                ),
            }
        } else if let Err(e) = store.release_lease(self.key, self.holder).await {
            tracing::warn!(error = %e, "could not release a refresh lease; it will expire");
        }
    }
}
