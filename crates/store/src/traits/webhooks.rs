//! The webhook outbox: deliveries of connection events, written with the change that caused
//! them (`Connections::save_refresh`, `record_failure`, `delete_connection`), claimed and
//! attempted by the deliverer on every instance until delivered or failed.

use async_trait::async_trait;
use refreshd_core::Timestamp;

use crate::{Delivery, DeliveryAttempt, DeliveryFilter, Redelivery, StoreError};

/// The deliveries of webhook events and the claims by which one deliverer at a time attempts
/// each.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Claims for `holder` until `until` at most `limit` pending deliveries due at `now`,
    /// those due longest first. Concurrent calls, on this instance or others on the same
    /// database, never hand out one delivery twice while its claim lasts (PostgreSQL: one
    /// statement with `FOR UPDATE SKIP LOCKED`; SQLite: the single writer). A claim whose
    /// holder died runs out, and the delivery is claimed again: delivery is at least once.
    async fn claim_deliveries(
        &self,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records how `holder`'s attempt at delivery `id` ended: one more attempt, and delivered,
    /// pending until the retry, or failed; the claim ends. `false` (nothing written) if
    /// `holder` no longer holds it (its claim ran out and another took it, or it was queued
    /// again meanwhile).
    async fn record_attempt(
        &self,
        id: i64,
        holder: [u8; 16],
        attempt: DeliveryAttempt,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The deliveries `filter` selects, newest first.
    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError>;

    /// Queues again, due at `now` and with the retry schedule started over, the delivery or
    /// the event's deliveries `which` names, whatever their status; any claim on them ends.
    /// How many were queued (0: no such delivery or event).
    async fn redeliver(&self, which: &Redelivery, now: Timestamp) -> Result<u64, StoreError>;
}
