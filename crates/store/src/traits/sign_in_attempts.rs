//! Counting sign-in attempts, to slow down password guessing.

use async_trait::async_trait;
use refreshd_core::Timestamp;

use crate::{AttemptCounts, AttemptLimits, StoreError};

/// Sign-in attempts by login and client address, shared by every instance on one database: a
/// login guessed at from one address is locked there only, and one address guessing at many
/// logins is slowed as a whole. Expired counts are deleted by `Housekeeping::sweep`.
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
