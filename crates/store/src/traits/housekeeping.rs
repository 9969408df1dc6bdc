//! Housekeeping: what an instance does on a timer, not for a request.

use async_trait::async_trait;
use refreshd_core::Timestamp;

use crate::{StoreError, Swept};

/// Deleting what can no longer be used; the rules are `crate::rules::sweep`.
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Housekeeping, safe to run at any time and on every instance at once: deletes codes that
    /// can no longer be redeemed, token pairs whose tokens have all expired, expired sessions,
    /// broker replays, leases and sign-in attempt counts, and forgets sealed grace-replay
    /// answers older than the grace window. Does a bounded amount of work per call; call it
    /// periodically.
    async fn sweep(&self, now: Timestamp, grace_window_secs: i64) -> Result<Swept, StoreError>;
}

/// What an adapter reports to `/metrics` by reading its state rather than counting events.
pub trait Gauges: Send + Sync {
    /// Sets the adapter's gauges to their values now; called before each scrape.
    fn record_gauges(&self) {}
}
