//! refreshd's storage, in domain words: traits the handlers call, and the adapters that keep
//! their promises in a database.

mod error;
mod model;
pub mod postgres;
pub mod rules;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod traits;

pub use error::StoreError;
pub use model::{
    ActiveToken, ApiKey, App, AttemptCounts, AttemptLimits, Authorization, Consent, Grant,
    NewAccess, NewApp, NewCode, NewPair, NewUser, RedeemedCode, Rotate, Rotation, Session, Swept,
    User,
};
pub use traits::access_tokens::AccessTokens;
pub use traits::accounts::{Apps, Users};
pub use traits::broker::{Callers, Leases, Replays};
pub use traits::codes::Codes;
pub use traits::consents::Consents;
pub use traits::families::Families;
pub use traits::housekeeping::{Gauges, Housekeeping};
pub use traits::sign_in_attempts::SignInAttempts;
use traits::sign_in_attempts::attempt_login;
pub use traits::web_sessions::WebSessions;

/// Everything refreshd keeps; one adapter implements all of it.
pub trait Store:
    Apps
    + Users
    + SignInAttempts
    + WebSessions
    + Consents
    + Codes
    + Families
    + AccessTokens
    + Housekeeping
    + Callers
    + Replays
    + Leases
    + Gauges
{
}

impl<T> Store for T where
    T: Apps
        + Users
        + SignInAttempts
        + WebSessions
        + Consents
        + Codes
        + Families
        + AccessTokens
        + Housekeeping
        + Callers
        + Replays
        + Leases
        + Gauges
{
}

/// Opens the adapter a database URL names (`sqlite://PATH` or `postgres://…`), creating and
/// migrating the database if needed. `pool_size` caps PostgreSQL connections.
pub async fn open(url: &str, pool_size: usize) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_with(url, pool_size, sqlite::DEFAULT_WAL_MAX_BYTES).await
}

/// `open`, with the size past which a SQLite WAL is restarted.
pub async fn open_with(
    url: &str,
    pool_size: usize,
    sqlite_wal_max_bytes: u64,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(path) = sqlite::path_of(url) {
        return Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(path, sqlite_wal_max_bytes).await?,
        ));
    }
    if postgres::is_postgres(url) {
        return Ok(std::sync::Arc::new(
            postgres::PostgresStore::open(url, pool_size).await?,
        ));
    }
    Err(StoreError::UnsupportedUrl(
        url.split(':').next().unwrap_or_default().to_owned(),
    ))
}
