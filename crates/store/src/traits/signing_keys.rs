//! The provider's id_token signing keys, shared by every instance on one database.

use async_trait::async_trait;

use crate::{SigningKey, StoreError};

/// The signing keys kept: added one generation at a time, dropped once no longer published.
#[async_trait]
pub trait SigningKeys: Send + Sync {
    /// Every key kept, lowest generation first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError>;

    /// Adds `key`; `false` (nothing written) when its generation is already taken, so of
    /// concurrent creators of one generation, on this instance or others on the same
    /// database, exactly one wins and the others read the winner's key.
    async fn add_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError>;

    /// Drops every key of a generation below `generation`; how many went.
    async fn drop_signing_keys_before(&self, generation: i64) -> Result<u64, StoreError>;
}
