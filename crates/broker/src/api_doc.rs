//! The broker's OpenAPI description: request and response shapes of seeds 000 and 001 and
//! their sibling endpoints, and the Bearer scheme they require, for the document at
//! `/openapi.json`. Bodies are JSON objects (`Content-Type: application/json` or `…+json`).
#![allow(dead_code)] // the structs exist to be described, not built

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the previous OAuth flow: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
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
    #[schema(required = true)]
    refresh_token: Option<String>,
    /// When the new access token expires, Unix time in **milliseconds**.
    #[schema(required = true)]
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
    #[schema(required = true)]
    expires_at: Option<i64>,
}

#[derive(ToSchema)]
pub struct CodeRequest {
    /// The authorization code: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    code: String,
    /// `/auth/google/exchange` only: the redirect URI the code was issued for (default: the
    /// configured `google.redirect_uri`; without either, 400).
    #[schema(min_length = 1)]
    redirect_uri: Option<String>,
}

#[derive(ToSchema)]
pub struct GoogleLoginRequest {
    /// A Google access token, verified through the userinfo endpoint: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    token: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct AuthUser {
    #[schema(required = true)]
    email: Option<String>,
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true)]
    image_url: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct AuthState {
    user: AuthUser,
    /// A refreshd session token (`rfs_…`), usable as the caller's Bearer afterwards.
    token: String,
    access_token: String,
    #[schema(required = true)]
    refresh_token: Option<String>,
    /// Unix time in milliseconds.
    #[schema(required = true)]
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
    #[schema(required = true)]
    refresh_token: Option<String>,
    #[schema(required = true)]
    expires_at: Option<i64>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a body that is not a JSON object (or not sent as JSON), a missing field; 413.
    InvalidRequest,
    /// 401.
    Unauthorized,
    /// 405: a method the path does not serve.
    MethodNotAllowed,
    /// 400: the upstream refused the refresh token, code or access token.
    InvalidGrant,
    /// 503.
    ProviderNotConfigured,
    /// 502.
    UpstreamError,
    /// 504.
    UpstreamTimeout,
    /// 503: the database cannot be used.
    Unavailable,
}

/// Every broker error.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// Always `false`.
    success: bool,
    error: ErrorCode,
    message: String,
    /// With `invalid_grant`: the upstream's own error code.
    upstream_error: Option<String>,
}

/// The errors every authenticated broker endpoint may answer.
#[derive(utoipa::IntoResponses)]
pub enum BrokerErrors {
    /// `invalid_request` (a body that is not a JSON object sent as JSON, a missing or invalid
    /// field) or `invalid_grant` (the upstream refused what was sent; `upstreamError` says why)
    #[response(status = 400)]
    BadRequest(ErrorEnvelope),
    /// `unauthorized`: no Bearer token, or an unknown, revoked or expired one
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthorized(ErrorEnvelope),
    /// `invalid_request`: a body over 64 KiB
    #[response(status = 413)]
    TooLarge(ErrorEnvelope),
    /// `upstream_error`: the upstream answered unexpectedly, or the connection broke
    #[response(status = 502)]
    BadGateway(ErrorEnvelope),
    /// `provider_not_configured` (this refreshd has no client for the upstream) or
    /// `unavailable` (the database cannot be used)
    #[response(status = 503)]
    Unavailable(ErrorEnvelope),
    /// `upstream_timeout`: the upstream did not answer in time
    #[response(status = 504)]
    Timeout(ErrorEnvelope),
}

/// `ok` when the database answers and no configured upstream is unreachable, `degraded` when
/// one is, `unavailable` when the database does not answer.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
    Unavailable,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseHealth {
    Ok,
    Unavailable,
}

/// `reachable` when the upstream's token endpoint answered HTTP at all.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamHealth {
    Reachable,
    Unreachable,
    NotConfigured,
}

#[derive(ToSchema)]
pub struct UpstreamsHealth {
    github: UpstreamHealth,
    google: UpstreamHealth,
}

#[derive(ToSchema)]
pub struct HealthReport {
    /// `true` with status 200.
    success: bool,
    status: HealthStatus,
    database: DatabaseHealth,
    upstreams: UpstreamsHealth,
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
        AuthState, LoggedIn, Exchanged, ErrorEnvelope, HealthReport
    )),
    modifiers(&BearerAuth)
)]
pub struct BrokerApi;
