//! The published id_token keys, at Google's paths: `/oauth2/v3/certs` (a JWK Set) and
//! `/oauth2/v1/certs` (PEM certificates keyed by kid, which google-auth-library for Node and
//! google-auth for Python read). Read from the store on every request, so every instance on one
//! database publishes the same set.

use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use refreshd_store::SigningKey;
use refreshd_store::rules::published_keys;

use super::error::GoogleError;
use crate::Provider;
use crate::oidc::id_token::ID_TOKEN_SECS;

/// How long verifiers may keep a fetched key set (Node's library keeps it exactly that long).
pub const CERTS_MAX_AGE_SECS: i64 = 3600;

fn cache_control() -> String {
    format!("public, max-age={CERTS_MAX_AGE_SECS}, must-revalidate, no-transform")
}

/// The keys published now: pending, current, and superseded ones whose id_tokens may still
/// be valid (`rules::signing_keys`).
pub(super) async fn published(provider: &Provider) -> Result<Vec<SigningKey>, GoogleError> {
    let keys = provider.store.signing_keys().await?;
    let now = provider.clock.now();
    Ok(published_keys(&keys, now, ID_TOKEN_SECS)
        .into_iter()
        .cloned()
        .collect())
}

/// `GET /oauth2/v3/certs`: `{"keys": [{"kty", "use", "alg", "kid", "n", "e"}, …]}`.
#[utoipa::path(get, path = "/oauth2/v3/certs", operation_id = "googleCerts", tag = "Google OAuth",
    responses(
        (status = 200, description = "The published keys as a JWK Set",
            body = crate::api_doc::JwkSet,
            headers(("Cache-Control" = String, description = "`public, max-age=3600, must-revalidate, no-transform`"))),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn jwks(State(provider): State<Provider>) -> Result<Response, GoogleError> {
    let keys: Vec<Value> = published(&provider)
        .await?
        .into_iter()
        .map(|key| {
            json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key.kid,
                "n": key.jwk_n,
                "e": key.jwk_e,
            })
        })
        .collect();
    Ok((
        [(CACHE_CONTROL, cache_control())],
        Json(json!({ "keys": keys })),
    )
        .into_response())
}

/// `GET /oauth2/v1/certs`: `{"<kid>": "-----BEGIN CERTIFICATE-----\n…", …}`.
#[utoipa::path(get, path = "/oauth2/v1/certs", operation_id = "googlePemCerts", tag = "Google OAuth",
    responses(
        (status = 200, description = "The published keys as PEM certificates by kid",
            body = crate::api_doc::PemCerts,
            headers(("Cache-Control" = String, description = "`public, max-age=3600, must-revalidate, no-transform`"))),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn pem_certs(State(provider): State<Provider>) -> Result<Response, GoogleError> {
    let certs: Map<String, Value> = published(&provider)
        .await?
        .into_iter()
        .map(|key| (key.kid, Value::String(key.cert_pem)))
        .collect();
    Ok(([(CACHE_CONTROL, cache_control())], Json(certs)).into_response())
}
