//! refreshd's storage, in domain words: traits the handlers call, and the adapters that keep
//! their promises in a database.

mod error;
mod model;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use refreshd_core::{ClientId, Timestamp, TokenDigest};

pub use error::StoreError;
pub use model::{
    ActiveToken, ApiKey, App, AttemptCounts, AttemptLimits, Authorization, Consent, Grant,
    NewAccess, NewApp, NewCode, NewPair, NewUser, RedeemedCode, Rotation, Session, Swept, User,
};

/// OAuth applications (clients).
#[async_trait]
pub trait Apps: Send + Sync {
    async fn create_app(&self, app: NewApp, now: Timestamp) -> Result<App, StoreError>;
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    async fn find_app(&self, client_id: &ClientId) -> Result<Option<App>, StoreError>;
    /// The apps `owner_id` manages, oldest first.
    async fn list_owned_apps(&self, owner_id: i64) -> Result<Vec<App>, StoreError>;
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
        owner_id: i64,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError>;
}

/// The provider's users: the people tokens are issued to.
#[async_trait]
pub trait Users: Send + Sync {
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User, StoreError>;
    async fn find_user(&self, login: &str) -> Result<Option<User>, StoreError>;
    /// Sets (or replaces) a user's password, given as its Argon2id PHC string, and ends every
    /// signed-in session of theirs; `false` when there is no such user.
    async fn set_password(
        &self,
        login: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The PHC string of a user's password; `None` when the user has none (or does not exist).
    async fn password_hash(&self, login: &str) -> Result<Option<String>, StoreError>;
}

/// The provider's browser side: signed-in sessions, users' approvals of apps, and what an
/// app's owner sees of its tokens.
#[async_trait]
pub trait Pages: Send + Sync {
    async fn create_web_session(
        &self,
        digest: TokenDigest,
        user_id: i64,
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

    /// The scopes `user_id` has approved for `app_id`, if any.
    async fn consented_scopes(
        &self,
        app_id: i64,
        user_id: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Records that `user_id` approved `scopes` for `app_id`, replacing an earlier approval.
    async fn record_consent(
        &self,
        app_id: i64,
        user_id: i64,
        scopes: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// The apps `user_id` has approved, newest first.
    async fn list_consents(&self, user_id: i64) -> Result<Vec<Consent>, StoreError>;
    /// Forgets the approval and, in the same transaction, revokes every token family and
    /// deletes every code of `user_id` for `app_id`. `false` when there was no approval.
    async fn revoke_consent(
        &self,
        app_id: i64,
        user_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The app's live token families, newest first, at most `limit`.
    async fn active_tokens(
        &self,
        app_id: i64,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ActiveToken>, StoreError>;
    /// Revokes one live family of `app_id`; `false` when there is none with that id.
    async fn revoke_family(
        &self,
        app_id: i64,
        family_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// Authorization codes and token pairs, with the rotation rules enforced in the database.
#[async_trait]
pub trait Grants: Send + Sync {
    async fn store_code(&self, code: NewCode) -> Result<(), StoreError>;

    /// Redeems a live code of `app_id` and, in the same transaction, starts a token family
    /// with `pair` for the code's grant (without its refresh token when the code was issued
    /// without one); `None` (and nothing stored) when the code is unknown,
    /// expired, already redeemed or another app's. Of concurrent redemptions exactly one
    /// succeeds. The caller checks redirect URI and PKCE against the returned code and revokes
    /// `pair` if they fail: the code is single use either way.
    async fn exchange_code(
        &self,
        code: TokenDigest,
        app_id: i64,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<Option<RedeemedCode>, StoreError>;

    /// Starts a new token family; returns the pair's id.
    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// Exchanges a refresh token for `successor`. Exactly one of concurrent rotations of one
    /// token wins (a conditional update); reuse is judged by `refreshd_core::rotation`.
    /// `sealed` is the successor's answer, encrypted under the presented token.
    async fn rotate_refresh(
        &self,
        presented: TokenDigest,
        app_id: i64,
        successor: NewPair,
        sealed: Vec<u8>,
        now: Timestamp,
        grace_window_secs: i64,
    ) -> Result<Rotation, StoreError>;

    /// The live, unexpired authorization an access token belongs to.
    async fn find_authorization(
        &self,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError>;

    /// Replaces a live access token of `app_id` with a new one; the old one stops at once.
    async fn reset_access(
        &self,
        app_id: i64,
        old: TokenDigest,
        new: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError>;

    /// Revokes one live access token (and the refresh token issued with it).
    async fn revoke_access(
        &self,
        app_id: i64,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Revokes every token and code of the user the live `access` token belongs to, for `app_id`.
    async fn revoke_grant(
        &self,
        app_id: i64,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Google's refresh grant (refresh tokens do not rotate): adds `access` to the family of a
    /// live, unexpired refresh token of `app_id`. `None` when there is no such token.
    async fn extend_family(
        &self,
        refresh: TokenDigest,
        app_id: i64,
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

    /// Housekeeping, safe to run at any time and on every instance at once: deletes codes that
    /// can no longer be redeemed, token pairs whose tokens have all expired, expired sessions,
    /// broker replays, leases and sign-in attempt counts, and forgets sealed grace-replay
    /// answers older than the grace window. Does a bounded amount of work per call; call it
    /// periodically.
    async fn sweep(&self, now: Timestamp, grace_window_secs: i64) -> Result<Swept, StoreError>;
}

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

/// Sign-in attempts by login and client address, shared by every instance on one database: a
/// login guessed at from one address is locked there only, and one address guessing at many
/// logins is slowed as a whole. Expired counts are deleted by `Grants::sweep`.
#[async_trait]
pub trait SignInAttempts: Send + Sync {
    /// Counts an attempt to sign in as `login` (case-insensitive, not empty) from `address`,
    /// before its password is checked, and returns the counts with it. `None`, and nothing
    /// counted, when `login` at `address` or `address` itself has already reached its limit in
    /// its current window. A window starts with the first attempt counted in it and lasts
    /// `limits.window_secs`; then the count starts over. Concurrent attempts are counted one at
    /// a time, so none slips past a limit.
    async fn count_sign_in_attempt(
        &self,
        login: &str,
        address: &str,
        limits: AttemptLimits,
        now: Timestamp,
    ) -> Result<Option<AttemptCounts>, StoreError>;

    /// After a successful sign-in as `login` from `address`: forgets that login's attempts
    /// there, and takes the attempt just counted off the address's count (it did not fail).
    async fn clear_sign_in_attempts(
        &self,
        login: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

/// How a login is kept in the attempt counts: lowercased, as logins are compared. `None` for
/// the empty login, which no user has (and which keys an address's own count).
fn attempt_login(login: &str) -> Option<String> {
    Some(login.to_lowercase()).filter(|l| !l.is_empty())
}

/// What an adapter reports to `/metrics` by reading its state rather than counting events.
pub trait Gauges: Send + Sync {
    /// Sets the adapter's gauges to their values now; called before each scrape.
    fn record_gauges(&self) {}
}

/// Everything refreshd keeps; one adapter implements all of it.
pub trait Store:
    Apps + Users + Pages + Grants + Callers + Replays + Leases + SignInAttempts + Gauges
{
}

impl<T> Store for T where
    T: Apps + Users + Pages + Grants + Callers + Replays + Leases + SignInAttempts + Gauges
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
