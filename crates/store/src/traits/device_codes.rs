//! Device authorizations (RFC 8628): started by a device, decided by its user on a page,
//! polled by the device until it gets its token.

use async_trait::async_trait;
use refreshd_core::{AppId, Timestamp, TokenDigest, UserId};

use crate::{DevicePoll, NewDeviceCode, NewPair, PendingDevice, StoreError};

/// Device codes, each redeemed once, by the app it was issued to, once its user approved it
/// and before it expires. Expired ones are deleted by `Housekeeping::sweep` an hour later.
#[async_trait]
pub trait DeviceCodes: Send + Sync {
    /// Stores a new device authorization; `false` (and nothing stored) when its device or user
    /// code digest is taken already (the caller draws new codes).
    async fn store_device_code(
        &self,
        code: NewDeviceCode,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The authorization whose user code has this digest, while it is pending and not expired.
    async fn pending_device_code(
        &self,
        user_code: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<PendingDevice>, StoreError>;

    /// Approves (for `user_id`) or denies a pending, unexpired authorization; `false` when
    /// there is none with this user code. Of concurrent decisions exactly one is taken.
    async fn decide_device_code(
        &self,
        user_code: TokenDigest,
        user_id: UserId,
        approve: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// A poll by `app_id` with a device code, judged by `rules::judge_poll`, in one
    /// transaction: records the poll (and a longer interval on `SlowDown`); once approved,
    /// marks the code redeemed and starts a token family with `pair` for its grant (`Issued`).
    /// Of concurrent polls after the approval exactly one gets `Issued`, the others `Unknown`.
    async fn poll_device_code(
        &self,
        device_code: TokenDigest,
        app_id: AppId,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<DevicePoll, StoreError>;
}
