//! `GET /.well-known/openid-configuration`: Google's discovery document, key for key and in
//! Google's order, its endpoints at refreshd's public URL.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::Provider;

/// The document, fields in Google's order. `issuer` is the configured one (Google's by
/// default). refreshd answers only `response_type=code`, but Google's list is kept for
/// fidelity (clients pick `code`); Google's `jwt-bearer` grant is left out, as refreshd does
/// not implement it.
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

pub async fn openid_configuration(State(provider): State<Provider>) -> Json<OpenIdConfiguration> {
    let at = |path: &str| format!("{}{path}", provider.public_url);
    Json(OpenIdConfiguration {
        issuer: provider.oidc.issuer.clone(),
        authorization_endpoint: at(crate::web::authorize::GOOGLE_PATH),
        device_authorization_endpoint: at("/device/code"),
        token_endpoint: at("/token"),
        userinfo_endpoint: at("/v1/userinfo"),
        revocation_endpoint: at("/revoke"),
        jwks_uri: at("/oauth2/v3/certs"),
        response_types_supported: &[
            "code",
            "token",
            "id_token",
            "code token",
            "code id_token",
            "token id_token",
            "code token id_token",
            "none",
        ],
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
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
    })
}
