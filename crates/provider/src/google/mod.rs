//! Google's dialect, so refreshd can stand in for Google's OAuth server offline: the token
//! endpoint (refresh tokens that do not rotate), revoke, tokeninfo and userinfo, and the
//! keys its id_tokens are signed with.

pub(crate) mod certs;
pub(crate) mod device;
pub(crate) mod discovery;
mod error;
pub(crate) mod token;
pub(crate) mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::{MAX_BODY_BYTES, Provider};

/// Google's routes, at the paths of `oauth2.googleapis.com` and `www.googleapis.com`.
pub fn router(provider: Provider) -> Router {
    Router::new()
        .route("/token", post(token::token))
        .route("/device/code", post(device::device_code))
        .route("/revoke", post(tokens::revoke))
        .route(
            "/tokeninfo",
            get(tokens::tokeninfo).post(tokens::tokeninfo_post),
        )
        .route("/oauth2/v3/userinfo", get(tokens::userinfo))
        // Where Google's discovery document points (openidconnect.googleapis.com/v1/userinfo).
        .route("/v1/userinfo", get(discovery::userinfo))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/oauth2/v3/certs", get(certs::jwks))
        .route("/oauth2/v1/certs", get(certs::pem_certs))
        .method_not_allowed_fallback(|| async { error::GoogleError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(provider)
}
