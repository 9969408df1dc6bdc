//! The broker's OpenAPI description: request and response shapes of seeds 000 and 001 and
//! their sibling endpoints, for the document at `/openapi.json`.
#![allow(dead_code)] // the structs exist to be described, not built

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the previous OAuth flow.
    refresh_token: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct GithubRefreshed {
    success: bool,
    /// The new access token.
    token: String,
    /// Same as `token` (for compatibility).
    access_token: String,
    /// The new refresh token (GitHub rotates them).
    refresh_token: Option<String>,
    /// When the new access token expires, Unix time in **milliseconds**.
    expires_at: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct GoogleRefreshed {
    success: bool,
    token: String,
    /// Google's new refresh token if it sent one, else the one the caller sent (still valid).
    refresh_token: String,
    /// Unix time in milliseconds.
    expires_at: Option<i64>,
}

#[derive(ToSchema)]
pub struct CodeRequest {
    code: String,
    /// `/auth/google/exchange` only: the redirect URI the code was issued for (default: the
    /// configured `google.redirect_uri`).
    redirect_uri: Option<String>,
}

#[derive(ToSchema)]
pub struct GoogleLoginRequest {
    /// A Google access token, verified through the userinfo endpoint.
    token: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct AuthUser {
    email: Option<String>,
    name: Option<String>,
    image_url: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct AuthState {
    user: AuthUser,
    /// A refreshd session token (`rfs_…`), usable as the caller's Bearer afterwards.
    token: String,
    access_token: String,
    refresh_token: Option<String>,
    /// Unix time in milliseconds.
    expires_at: Option<i64>,
    /// `GITHUB` or `GOOGLE`.
    provider: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct LoggedIn {
    success: bool,
    /// `Authentication successful`.
    message: String,
    auth_state: AuthState,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct Exchanged {
    success: bool,
    token: String,
    refresh_token: Option<String>,
    expires_at: Option<i64>,
}

/// Every broker error.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// Always `false`.
    success: bool,
    /// `invalid_request`, `unauthorized`, `invalid_grant`, `provider_not_configured`,
    /// `upstream_error`, `upstream_timeout`, `unavailable`.
    error: String,
    message: String,
    /// With `invalid_grant`: the upstream's own error code.
    upstream_error: Option<String>,
}

/// The errors every broker endpoint may answer.
#[derive(utoipa::IntoResponses)]
pub enum BrokerErrors {
    /// `invalid_request` or `invalid_grant`
    #[response(status = 400)]
    BadRequest(ErrorEnvelope),
    /// `unauthorized`
    #[response(status = 401)]
    Unauthorized(ErrorEnvelope),
    /// `upstream_error`
    #[response(status = 502)]
    BadGateway(ErrorEnvelope),
    /// `provider_not_configured` or `unavailable`
    #[response(status = 503)]
    Unavailable(ErrorEnvelope),
    /// `upstream_timeout`
    #[response(status = 504)]
    Timeout(ErrorEnvelope),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key (`refreshd key create`) or a session token from a login endpoint",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::refresh::github,
        crate::refresh::google,
        crate::login::github,
        crate::login::google_exchange,
        crate::login::google,
        crate::health::health,
    ),
    components(schemas(
        RefreshRequest, GithubRefreshed, GoogleRefreshed, CodeRequest, GoogleLoginRequest, AuthUser,
        AuthState, LoggedIn, Exchanged, ErrorEnvelope
    )),
    modifiers(&BearerAuth)
)]
pub struct BrokerApi;
