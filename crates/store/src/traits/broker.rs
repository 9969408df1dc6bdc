//! What the broker keeps: its callers, its replay vault and its leases.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};

use crate::{ApiKey, Session, StoreError};

/// Who may call the broker: API keys and login sessions, kept as digests.
#[async_trait]
pub trait Callers: Send + Sync {
    async fn create_api_key(
        &self,
        name: &str,
        digest: TokenDigest,
        last_four: &str,
        now: Timestamp,
    ) -> Result<ApiKey, StoreError>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// `false` when there is no live key with that id.
    async fn revoke_api_key(&self, id: i64, now: Timestamp) -> Result<bool, StoreError>;
    /// The live key with this digest.
    async fn find_api_key(&self, digest: TokenDigest) -> Result<Option<ApiKey>, StoreError>;
    async fn create_session(
        &self,
        digest: TokenDigest,
        session: Session,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The unexpired session with this digest.
    async fn find_session(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError>;
}

/// The broker's idempotent-replay vault: sealed answers by lookup digest, until they expire.
#[async_trait]
pub trait Replays: Send + Sync {
    /// Keeps `sealed` under `lookup` until `expires_at`; an existing entry is replaced.
    async fn put_replay(
        &self,
        lookup: TokenDigest,
        sealed: Vec<u8>,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    async fn get_replay(
        &self,
        lookup: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The broker's cross-instance single flight: a lease per refresh token, held by one flight
/// at a time until released or until it expires (so a holder that died blocks no one for long).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes the lease on `key` for `holder` until `until`, if it is free or has expired.
    async fn take_lease(
        &self,
        key: TokenDigest,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Moves the end of `holder`'s lease on `key` to `until`; `false` if `holder` no longer
    /// holds it (another took it after it expired).
    async fn renew_lease(
        &self,
        key: TokenDigest,
        holder: [u8; 16],
        until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Releases `key` if `holder` still holds it.
    async fn release_lease(&self, key: TokenDigest, holder: [u8; 16]) -> Result<(), StoreError>;
    /// Whether nobody holds `key` at `now` (a read: cheaper than a failing `take_lease`).
    async fn lease_free(&self, key: TokenDigest, now: Timestamp) -> Result<bool, StoreError>;
}
