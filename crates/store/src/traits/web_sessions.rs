//! Signed-in browser sessions of the provider's pages.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest, UserId};

use crate::{StoreError, User};

/// The provider's signed-in browser sessions, kept as digests of their cookies.
#[async_trait]
pub trait WebSessions: Send + Sync {
    async fn create_web_session(
        &self,
        digest: TokenDigest,
        user_id: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The user of the unexpired session with this digest.
    async fn find_web_session(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;
    async fn delete_web_session(&self, digest: TokenDigest) -> Result<(), StoreError>;
}
