//! Users' approvals of apps, from the consent page.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, UserId};

use crate::{Consent, StoreError};

/// What users have approved apps to do: an approval lets later authorize requests for the
/// same scopes (or fewer) skip the consent page.
#[async_trait]
pub trait Consents: Send + Sync {
    /// The scopes `user_id` has approved for `app_id`, if any.
    async fn consented_scopes(
        &self,
        app_id: AppId,
        user_id: UserId,
    ) -> Result<Option<Scopes>, StoreError>;
    /// Records that `user_id` approved `scopes` for `app_id`, replacing an earlier approval.
    async fn record_consent(
        &self,
        app_id: AppId,
        user_id: UserId,
        scopes: &Scopes,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The apps `user_id` has approved, newest first.
    async fn list_consents(&self, user_id: UserId) -> Result<Vec<Consent>, StoreError>;
    /// Forgets the approval and, in the same transaction, revokes every token family and
    /// deletes every code of `user_id` for `app_id`. `false` when there was no approval.
    async fn revoke_consent(
        &self,
        app_id: AppId,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
