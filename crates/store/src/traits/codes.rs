//! Authorization codes: stored when a user authorizes, redeemed once for tokens.

use async_trait::async_trait;
use refreshd_core::{AppId, Timestamp, TokenDigest};

use crate::{NewCode, NewPair, RedeemedCode, StoreError};

/// Authorization codes, each redeemable once, by the app it was issued to, before it expires.
#[async_trait]
pub trait Codes: Send + Sync {
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
        app_id: AppId,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<Option<RedeemedCode>, StoreError>;
}
