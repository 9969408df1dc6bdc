//! Access tokens: looking one up, replacing or revoking it.

use async_trait::async_trait;
use refreshd_core::{AppId, Timestamp, TokenDigest};

use crate::{Authorization, NewAccess, StoreError};

/// What an access token stands for, and the changes GitHub's applications API makes to it.
#[async_trait]
pub trait AccessTokens: Send + Sync {
    /// The live, unexpired authorization an access token belongs to.
    async fn find_authorization(
        &self,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError>;

    /// Replaces a live access token of `app_id` with a new one; the old one stops at once.
    async fn reset_access(
        &self,
        app_id: AppId,
        old: TokenDigest,
        new: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError>;

    /// Revokes one live access token (and the refresh token issued with it).
    async fn revoke_access(
        &self,
        app_id: AppId,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Revokes every token and code of the user the live `access` token belongs to, for `app_id`.
    async fn revoke_grant(
        &self,
        app_id: AppId,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
