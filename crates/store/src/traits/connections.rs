//! Connections: users' upstream grants that refreshd holds, and the claims by which one
//! refresher at a time works on each.

use async_trait::async_trait;
use refreshd_core::{ConnectionId, Timestamp, Upstream};

use crate::{
    ClaimAttempt, Connection, ConnectionFilter, ConnectionTokens, Failure, NewConnection,
    StoreError, WebhookEvent,
};

/// Connections, their refreshes and failures, and claims on them.
///
/// Two guards keep concurrent writers apart. The **version**: `save_refresh` and
/// `record_failure` name the version they read and change nothing if it moved, so of writers
/// that read one version exactly one wins. The **claim**: whoever means to call the upstream
/// first claims the connection for a term (`claim_due`, `claim_connection`), so that while the
/// claim lasts nobody else, on this instance or another, calls the upstream for it. A claim is
/// not a change: it leaves the version alone. A holder that dies stops nobody for longer than
/// its term.
///
/// The writes that change a connection's state take the webhook `event` that change causes
/// (`rules::webhooks` decides which), and write its deliveries in the same transaction, only if
/// the write wins: an event exists exactly when its change committed.
#[async_trait]
pub trait Connections: Send + Sync {
    /// Creates connection `new.id`, or replaces the one with that id as a whole: its upstream,
    /// tokens and metadata are the new ones, it is live with no failures, backoff or claim,
    /// and its tokens count as obtained at `now`; `created_at` stays. Its version is one the
    /// id never had, so a refresh or failure written against what was replaced (or deleted)
    /// never lands on the new one. Of concurrent puts of one id, the last to commit stays.
    async fn put_connection(
        &self,
        new: NewConnection,
        now: Timestamp,
    ) -> Result<Connection, StoreError>;

    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError>;

    /// The connections `filter` selects, in id order (byte order, the same on every backend),
    /// so the last id of one page is the `after` of the next.
    async fn list_connections(
        &self,
        filter: &ConnectionFilter,
    ) -> Result<Vec<Connection>, StoreError>;

    /// Deletes connection `id` if it is at `expected_version` (any version with `None`); what
    /// it was, or `None` when there was none or its version moved (it was replaced or
    /// refreshed meanwhile). Of concurrent deletes one gets the connection (and writes
    /// `event`), the others `None`.
    async fn delete_connection(
        &self,
        id: &ConnectionId,
        expected_version: Option<i64>,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError>;

    /// Keeps a refresh's `tokens` if the connection is still at `expected_version`: it is live
    /// again with no failures, backoff or claim, refreshed at `now`, next looked at at
    /// `next_refresh_at`. `None` when the version moved or the connection is gone: of
    /// concurrent saves (or failures) naming one version, exactly one succeeds, and only it
    /// writes its `event`.
    async fn save_refresh(
        &self,
        id: &ConnectionId,
        expected_version: i64,
        tokens: ConnectionTokens,
        next_refresh_at: Option<Timestamp>,
        now: Timestamp,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError>;

    /// Records a failed refresh if the connection is still at `expected_version`: one more
    /// failure, and what `rules::connections::after_failure` says (broken, or backing off
    /// until `retry_after`); the claim ends. Its tokens stay. `None` when the version moved or
    /// the connection is gone, under the same promise as `save_refresh`.
    async fn record_failure(
        &self,
        id: &ConnectionId,
        expected_version: i64,
        failure: Failure,
        now: Timestamp,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError>;

    /// Claims for `holder` until `until` at most `limit` connections of `upstreams` due at
    /// `now` (`rules::connections::is_due`), those due longest first, and returns them as they
    /// now are. Concurrent calls, on this instance or others on the same database, never hand out
    /// one connection twice while its claim lasts (PostgreSQL: one statement with `FOR UPDATE
    /// SKIP LOCKED`, so callers skip each other's rows rather than wait; SQLite: the single
    /// writer).
    async fn claim_due(
        &self,
        upstreams: &[Upstream],
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Connection>, StoreError>;

    /// Claims connection `id` for `holder` until `until`, due or not (a token asked for, a
    /// forced refresh), unless another holder's claim lasts past `now`; `holder` may claim
    /// again what it holds. Of concurrent claims on a free connection, exactly one wins. The
    /// status is not looked at: the caller decides on the returned connection.
    async fn claim_connection(
        &self,
        id: &ConnectionId,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
    ) -> Result<ClaimAttempt, StoreError>;

    /// Moves the end of `holder`'s claim on `id` to `until`, never earlier than it was (to
    /// hold it while a refresh runs, or for the full hold when a refresh's save failed: a
    /// renewal landing late cannot shorten that); `false` if `holder` no longer holds it.
    async fn renew_claim(
        &self,
        id: &ConnectionId,
        holder: [u8; 16],
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Ends `holder`'s claim on `id` without a refresh or failure to record; `false` if
    /// `holder` did not hold it. Nothing else changes.
    async fn release_claim(&self, id: &ConnectionId, holder: [u8; 16]) -> Result<bool, StoreError>;
}
