//! Who uses the provider: apps (OAuth clients) and users.

use async_trait::async_trait;
use refreshd_core::{ClientId, Login, Timestamp, TokenDigest, UserId};

use crate::{App, NewApp, NewUser, StoreError, User};

/// OAuth applications (clients).
#[async_trait]
pub trait Apps: Send + Sync {
    async fn create_app(&self, app: NewApp, now: Timestamp) -> Result<App, StoreError>;
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    async fn find_app(&self, client_id: &ClientId) -> Result<Option<App>, StoreError>;
    /// The apps `owner_id` manages, oldest first.
    async fn list_owned_apps(&self, owner_id: UserId) -> Result<Vec<App>, StoreError>;
    /// Replaces the registered redirect URIs (one per line).
    async fn set_redirect_uris(
        &self,
        client_id: &ClientId,
        uris: &str,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError>;
    /// Changes what new grants get; tokens already issued keep their own expiry.
    async fn set_expiring_tokens(
        &self,
        client_id: &ClientId,
        expiring: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError>;
    /// Whether the app may start the device flow.
    async fn set_device_flow(
        &self,
        client_id: &ClientId,
        enabled: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError>;
    async fn set_client_secret(
        &self,
        client_id: &ClientId,
        secret: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError>;
    /// Hands the app to the user `owner_id`, who then manages it in the settings pages.
    async fn set_owner(
        &self,
        client_id: &ClientId,
        owner_id: UserId,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError>;
}

/// The provider's users: the people tokens are issued to.
#[async_trait]
pub trait Users: Send + Sync {
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User, StoreError>;
    async fn find_user(&self, login: &Login) -> Result<Option<User>, StoreError>;
    /// Sets (or replaces) a user's password, given as its Argon2id PHC string, and ends every
    /// signed-in session of theirs; `false` when there is no such user.
    async fn set_password(
        &self,
        login: &Login,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The PHC string of a user's password; `None` when the user has none (or does not exist).
    async fn password_hash(&self, login: &Login) -> Result<Option<String>, StoreError>;
}
