//! A claim on a connection, held the way the broker holds a refresh lease: a short term,
//! renewed every second while its holder works. A holder that dies (SIGKILL, a lost machine)
//! stops others for at most `LEASE_TERM_SECS`, so the next attempt comes soon, inside an
//! upstream's grace window for a refresh whose answer was lost. An unknown outcome is held
//! off longer by the failure it records (`retry_after`), not by the claim.

use refreshd_core::{ConnectionId, Timestamp};
use tokio::task::JoinHandle;

use crate::lease::{LEASE_TERM_SECS, RENEW_EVERY};
use crate::state::Broker;

/// Where a claim taken or renewed now ends.
pub fn term_from(now: Timestamp) -> Timestamp {
    now.plus_secs(LEASE_TERM_SECS)
}

/// Renews `holder`'s claim on a connection until dropped, or until the claim ends (released,
/// or ended by the refresh or failure its holder recorded).
pub struct Kept(JoinHandle<()>);

impl Kept {
    pub fn start(broker: &Broker, id: &ConnectionId, holder: [u8; 16]) -> Self {
        let (broker, id) = (broker.clone(), id.clone());
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let until = term_from(broker.0.clock.now());
                match broker.0.store.renew_claim(&id, holder, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew a claim on a connection; retrying")
                    }
                }
            }
        }))
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.0.abort();
    }
}
