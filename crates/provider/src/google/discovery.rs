//! `GET /.well-known/openid-configuration`: Google's discovery document, key for key and in
//! Google's order, its endpoints at refreshd's public URL.

use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderName};
use serde::Serialize;
use serde_json::Value;

use super::error::GoogleError;
use crate::Provider;

/// The document, Google's fields in Google's order. `issuer` is the configured one (Google's
/// by default). The values are what refreshd does: `response_types_supported` is `code` alone
/// (Google also lists the implicit and hybrid types, which refreshd's authorize endpoint
/// refuses), and Google's `jwt-bearer` grant is left out.
#[derive(Serialize)]
pub struct OpenIdConfiguration {
    issuer: String,
    authorization_endpoint: String,
    device_authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    revocation_endpoint: String,
    jwks_uri: String,
    response_types_supported: &'static [&'static str],
    subject_types_supported: &'static [&'static str],
    id_token_signing_alg_values_supported: &'static [&'static str],
    scopes_supported: &'static [&'static str],
    token_endpoint_auth_methods_supported: &'static [&'static str],
    claims_supported: &'static [&'static str],
    code_challenge_methods_supported: &'static [&'static str],
    grant_types_supported: &'static [&'static str],
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", operation_id = "openidConfiguration", tag = "Google OAuth",
    responses((status = 200, description = "The discovery document", body = crate::api_doc::OpenIdConfiguration,
        headers(("Cache-Control" = String, description = "`public, max-age=3600`")))))]
pub async fn openid_configuration(
    State(provider): State<Provider>,
) -> ([(HeaderName, &'static str); 1], Json<OpenIdConfiguration>) {
    let at = |path: &str| format!("{}{path}", provider.public_url);
    // Google lets the document be cached for an hour.
    let cache = [(CACHE_CONTROL, "public, max-age=3600")];
    let document = Json(OpenIdConfiguration {
        issuer: provider.oidc.issuer.clone(),
        authorization_endpoint: at(crate::web::authorize::GOOGLE_PATH),
        device_authorization_endpoint: at("/device/code"),
        token_endpoint: at("/token"),
        userinfo_endpoint: at("/v1/userinfo"),
        revocation_endpoint: at("/revoke"),
        jwks_uri: at("/oauth2/v3/certs"),
        response_types_supported: &["code"],
        subject_types_supported: &["public"],
        id_token_signing_alg_values_supported: &["RS256"],
        scopes_supported: &["openid", "email", "profile"],
        token_endpoint_auth_methods_supported: &["client_secret_post", "client_secret_basic"],
        claims_supported: &[
            "aud",
            "email",
            "email_verified",
            "exp",
            "family_name",
            "given_name",
            "iat",
            "iss",
            "name",
            "picture",
            "sub",
        ],
        code_challenge_methods_supported: &["plain", "S256"],
        grant_types_supported: &[
            "authorization_code",
            "refresh_token",
            crate::device::GRANT_TYPE,
        ],
    });
    (cache, document)
}

/// `GET /v1/userinfo`, where the discovery document points (Google's
/// `openidconnect.googleapis.com/v1/userinfo`): the same answer as `/oauth2/v3/userinfo`.
#[utoipa::path(get, path = "/v1/userinfo", operation_id = "openidUserInfo", tag = "Google OAuth",
    security(("googleToken" = [])),
    responses(
        (status = 200, description = "The token's user", body = crate::api_doc::UserInfo),
        (status = 401, description = "`invalid_request`: Invalid Credentials (no Bearer token, or not a live Google-dialect access token)",
            body = crate::api_doc::GoogleError,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"`"))),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn userinfo(
    provider: State<Provider>,
    headers: HeaderMap,
) -> Result<Json<Value>, GoogleError> {
    super::tokens::userinfo(provider, headers).await
}
