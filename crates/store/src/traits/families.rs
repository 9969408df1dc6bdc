//! Token families: the chain of pairs one grant's refresh tokens rotate through.

use async_trait::async_trait;
use refreshd_core::{AppId, FamilyId, Timestamp, TokenDigest};

use crate::{ActiveToken, Grant, NewAccess, NewPair, Rotate, Rotation, StoreError};

/// Token families: started for a grant, rotated (GitHub) or extended (Google) by their refresh
/// token, revoked as a whole. The rotation rules are enforced in the database.
#[async_trait]
pub trait Families: Send + Sync {
    /// Starts a new token family; returns the pair's id.
    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// Exchanges the presented refresh token for `rotate.successor`. Exactly one of concurrent
    /// rotations of one token wins (a conditional update); what a failed one comes to is
    /// `crate::rules::rotation`'s verdict.
    async fn rotate_refresh(&self, rotate: Rotate, now: Timestamp) -> Result<Rotation, StoreError>;

    /// Google's refresh grant (refresh tokens do not rotate): adds `access` to the family of a
    /// live, unexpired refresh token of `app_id`. `None` when there is no such token.
    async fn extend_family(
        &self,
        refresh: TokenDigest,
        app_id: AppId,
        access: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Grant>, StoreError>;

    /// Revokes the whole family a live access or refresh token belongs to (Google's revoke).
    /// `false` when the token is unknown or already dead.
    async fn revoke_family_of(
        &self,
        token: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Whether the refresh token with this digest (live or spent) belongs to a token family of
    /// `app_id` started through the device flow: its client is public and may refresh without
    /// its client secret. `false` for an unknown token or another app's.
    async fn public_family_of(
        &self,
        refresh: TokenDigest,
        app_id: AppId,
    ) -> Result<bool, StoreError>;

    /// The app's live token families, newest first, at most `limit`.
    async fn active_tokens(
        &self,
        app_id: AppId,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ActiveToken>, StoreError>;
    /// Revokes one live family of `app_id`; `false` when there is none with that id.
    async fn revoke_family(
        &self,
        app_id: AppId,
        family_id: FamilyId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
