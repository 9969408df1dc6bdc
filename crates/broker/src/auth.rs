//! Who is calling: `Authorization: Bearer` with an API key (`rfd_…`) or a session token from
//! a login endpoint (`rfs_…`), both stored only as digests.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use refreshd_core::TokenDigest;

use crate::error::BrokerError;
use crate::state::Broker;

pub const API_KEY_PREFIX: &str = "rfd_";
pub const SESSION_PREFIX: &str = "rfs_";

/// An authenticated caller; `id` distinguishes callers in the replay vault.
pub struct Caller {
    pub id: String,
}

impl Caller {
    /// Whether the caller is a backend (an API key), not an end user's session.
    pub fn is_backend(&self) -> bool {
        self.id.starts_with(KEY_CALLER)
    }

    /// The caller, if it is a backend; connections hold every user's grants, so they are the
    /// backend's alone.
    pub fn backend_only(self) -> Result<Self, BrokerError> {
        if !self.is_backend() {
            return Err(BrokerError::Forbidden(
                "connections take an API key (rfd_…), not a session token",
            ));
        }
        Ok(self)
    }
}

/// A caller with an API key: the backend itself. Connections hold every user's grants, so
/// they are the backend's alone; a session token, which end users hold, is refused (403).
pub struct Backend(pub Caller);

impl FromRequestParts<Broker> for Backend {
    type Rejection = BrokerError;

    async fn from_request_parts(parts: &mut Parts, broker: &Broker) -> Result<Self, BrokerError> {
        let caller = Caller::from_request_parts(parts, broker).await?;
        Ok(Self(caller.backend_only()?))
    }
}

/// How a caller's `id` starts when it came with an API key.
const KEY_CALLER: &str = "key:";

impl FromRequestParts<Broker> for Caller {
    type Rejection = BrokerError;

    async fn from_request_parts(parts: &mut Parts, broker: &Broker) -> Result<Self, BrokerError> {
        let missing =
            BrokerError::Unauthorized("send an API key or session token as Authorization: Bearer");
        let value = parts.headers.get(header::AUTHORIZATION).ok_or(missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(BrokerError::Unauthorized(
                "the Authorization header is not a Bearer token",
            ))?;
        let wrong = BrokerError::Unauthorized(
            "the API key or session token is unknown, revoked or expired",
        );
        let digest = TokenDigest::of(token);
        let store = &broker.0.store;
        if token.starts_with(API_KEY_PREFIX) {
            let key = store.find_api_key(digest).await?.ok_or(wrong)?;
            return Ok(Self {
                id: format!("{KEY_CALLER}{}", key.id),
            });
        }
        if token.starts_with(SESSION_PREFIX) {
            let now = broker.0.clock.now();
            let session = store.find_session(digest, now).await?.ok_or(wrong)?;
            return Ok(Self {
                id: format!("session:{}:{}", session.provider, session.subject),
            });
        }
        Err(wrong)
    }
}
