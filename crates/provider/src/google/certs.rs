//! The published id_token keys, at Google's paths: `/oauth2/v3/certs` (a JWK Set) and
//! `/oauth2/v1/certs` (PEM certificates keyed by kid, which google-auth-library for Node and
//! google-auth for Python read). Read from the store on every request, so every instance on one
//! database publishes the same set.

use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::GoogleError;
use crate::Provider;

/// How long verifiers may keep a fetched key set (Node's library keeps it exactly that long).
pub const CERTS_MAX_AGE_SECS: i64 = 3600;

fn cache_control() -> String {
    format!("public, max-age={CERTS_MAX_AGE_SECS}, must-revalidate, no-transform")
}

/// `GET /oauth2/v3/certs`: `{"keys": [{"kty", "use", "alg", "kid", "n", "e"}, …]}`.
pub async fn jwks(State(provider): State<Provider>) -> Result<Response, GoogleError> {
    let keys: Vec<Value> = provider
        .store
        .signing_keys()
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
pub async fn pem_certs(State(provider): State<Provider>) -> Result<Response, GoogleError> {
    let certs: Map<String, Value> = provider
        .store
        .signing_keys()
        .await?
        .into_iter()
        .map(|key| (key.kid, Value::String(key.cert_pem)))
        .collect();
    Ok(([(CACHE_CONTROL, cache_control())], Json(certs)).into_response())
}
