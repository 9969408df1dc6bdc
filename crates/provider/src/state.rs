//! What every provider handler needs: storage, time, lifetimes, the public URL and the proxies
//! whose word on a client's address is believed.

use std::sync::Arc;

use refreshd_core::{Clock, KeySealer, Lifetimes, Login};
use refreshd_store::Store;

use crate::web::TrustedProxies;

#[derive(Clone)]
pub struct Provider {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub lifetimes: Lifetimes,
    /// Where clients reach refreshd, without a trailing slash; used in `url` fields.
    pub public_url: String,
    /// Peers whose `X-Forwarded-For` names the client whose sign-in attempts are counted.
    pub trusted_proxies: TrustedProxies,
    /// OpenID Connect in Google's dialect: the issuer named, the key that opens signing keys.
    pub oidc: Oidc,
}

/// What id_tokens need beyond the store.
#[derive(Clone)]
pub struct Oidc {
    /// The id_token's `iss` and the discovery document's `issuer`.
    pub issuer: String,
    /// Opens the sealed signing keys; without it (tools that serve no `/token`) a grant with
    /// `openid` gets no id_token but an error.
    pub sealer: Option<KeySealer>,
}

/// Google's issuer, which Google's libraries accept by default.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

impl Default for Oidc {
    fn default() -> Self {
        Self {
            issuer: GOOGLE_ISSUER.to_owned(),
            sealer: None,
        }
    }
}

impl Provider {
    /// Base of REST resource URLs, GitHub Enterprise style.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.public_url)
    }

    /// A user's picture, in both dialects (GitHub's `avatar_url`, Google's `picture`).
    pub fn avatar_url(&self, login: &Login) -> String {
        format!("{}/avatars/{login}", self.public_url)
    }
}
