//! A claim on a connection, held the way the broker holds a refresh lease: a short term,
//! renewed every second while its holder works. A holder that dies (SIGKILL, a lost machine)
//! stops others for at most `LEASE_TERM_SECS`, so the next attempt comes soon, inside an
//! upstream's grace window for a refresh whose answer was lost. An unknown outcome is held
//! off longer by the failure it records (`retry_after`), or, when that cannot be written, by
//! extending the claim for the full hold (`fresh::hold`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use refreshd_core::{ConnectionId, Timestamp};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lease::{LEASE_TERM_SECS, RENEW_EVERY};
use crate::state::Broker;

/// Where a claim taken or renewed now ends.
pub fn term_from(now: Timestamp) -> Timestamp {
    now.plus_secs(LEASE_TERM_SECS)
}

/// Renews `holder`'s claim on a connection until dropped, or until the claim ends (released,
/// or ended by the refresh or failure its holder recorded).
pub struct Kept {
    renewals: JoinHandle<()>,
    /// When the claim was last known to run a full term from, or `None` once it was lost.
    confirmed: Arc<Mutex<Option<Instant>>>,
}

impl Kept {
    /// Starts renewing a claim just taken.
    pub fn start(broker: &Broker, id: &ConnectionId, holder: [u8; 16]) -> Self {
        let (broker, id) = (broker.clone(), id.clone());
        let confirmed = Arc::new(Mutex::new(Some(Instant::now())));
        let seen = confirmed.clone();
        let renewals = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let asked = Instant::now();
                let until = term_from(broker.0.clock.now());
                match broker.0.store.renew_claim(&id, holder, until).await {
                    Ok(true) => *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(asked),
                    Ok(false) => {
                        *seen.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew a claim on a connection; retrying")
                    }
                }
            }
        });
        Self {
            renewals,
            confirmed,
        }
    }

    /// Whether the claim surely still holds: not lost, and renewed (or taken) less than a
    /// term ago, with a second to spare. A connection whose claim may have lapsed (renewals
    /// failing while it waited) is not refreshed on: another instance may have it.
    pub fn holds(&self) -> bool {
        let margin = Duration::from_secs(LEASE_TERM_SECS as u64 - 1);
        self.confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < margin)
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.renewals.abort();
    }
}
