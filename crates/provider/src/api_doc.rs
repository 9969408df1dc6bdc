//! The provider's OpenAPI description: both dialects' request and response shapes as the
//! handlers read and write them, their security schemes, for the document at `/openapi.json`.
#![allow(dead_code)] // the types exist to be described, not built

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::TokenAnswer;

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GithubGrantType {
    AuthorizationCode,
    RefreshToken,
    /// The device flow's poll; needs `client_id` and `device_code` only.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

/// The parameters of GitHub's token request, from the query string, a form or a JSON object
/// of strings (the body wins). An empty value counts as absent. The handler reads them
/// leniently: every mistake is answered in GitHub's shape, most with status 200.
#[derive(ToSchema)]
pub struct GithubTokenRequest {
    /// `authorization_code` (the default when `code` is given) or `refresh_token`; another
    /// value is answered `unsupported_grant_type`.
    grant_type: Option<GithubGrantType>,
    /// Required unless the client authenticates with HTTP Basic.
    #[schema(max_length = 100)]
    client_id: Option<String>,
    /// Required, except to refresh a token obtained through the device flow (a public client);
    /// a secret that is sent is checked all the same.
    client_secret: Option<String>,
    /// The authorization code (`authorization_code` grant).
    code: Option<String>,
    /// Must be the one the code was issued for, when that request named one.
    redirect_uri: Option<String>,
    /// PKCE: required when the code was issued with a challenge.
    #[schema(pattern = "^[A-Za-z0-9._~-]{43,128}$")]
    code_verifier: Option<String>,
    /// The device code (device-code grant).
    #[schema(pattern = "^[0-9a-f]{40}$")]
    device_code: Option<String>,
    /// The refresh token (`refresh_token` grant).
    #[schema(pattern = "^ghr_[0-9A-Za-z]{76}$")]
    refresh_token: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GithubTokenErrorCode {
    /// Status 200: wrong or missing client credentials.
    IncorrectClientCredentials,
    /// Status 200: an unknown, used or expired code, or a PKCE mismatch.
    BadVerificationCode,
    /// Status 200.
    BadRefreshToken,
    /// Status 200.
    RedirectUriMismatch,
    /// Status 200.
    UnsupportedGrantType,
    /// Status 200: the app has the device flow off.
    DeviceFlowDisabled,
    /// Status 200 (device-code grant): the user has not decided yet.
    AuthorizationPending,
    /// Status 200 (device-code grant): polled too soon; `interval` gives the new wait.
    SlowDown,
    /// Status 200 (device-code grant).
    ExpiredToken,
    /// Status 200 (device-code grant): the user cancelled.
    AccessDenied,
    /// Status 200 (device-code grant): unknown or used device code.
    IncorrectDeviceCode,
    /// Status 400, 413 or 415: the request could not be read.
    InvalidRequest,
    /// Status 503.
    TemporarilyUnavailable,
}

/// An error of GitHub's token endpoint.
#[derive(ToSchema)]
pub struct GithubTokenError {
    error: GithubTokenErrorCode,
    error_description: String,
    /// GitHub's troubleshooting page for the error; absent for `invalid_request` and
    /// `temporarily_unavailable`.
    error_uri: Option<String>,
    /// `slow_down` only: the seconds to wait between polls from now on.
    interval: Option<i64>,
}

/// `POST /login/device/code`'s parameters.
#[derive(ToSchema)]
pub struct GithubDeviceCodeRequest {
    /// The app's client id; the app must have the device flow on.
    #[schema(max_length = 100)]
    client_id: String,
    /// Scopes, space- (or comma-) separated.
    scope: Option<String>,
}

/// A started device authorization.
#[derive(ToSchema)]
pub struct GithubDeviceCode {
    /// 40 hex characters, for polling the token endpoint.
    device_code: String,
    /// Seconds the codes live: 899.
    expires_in: i64,
    /// Seconds to wait between polls: 5.
    interval: i64,
    /// `XXXX-XXXX`, for the user to enter at `verification_uri`.
    #[schema(pattern = "^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")]
    user_code: String,
    /// `{public_url}/login/device`.
    verification_uri: String,
}

/// What `POST /login/device/code` answers with status 200: the codes or one of GitHub's errors.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum GithubDeviceCodeResponse {
    Codes(GithubDeviceCode),
    Error(GithubTokenError),
}

/// What GitHub's token endpoint answers with status 200: a token pair or one of its errors.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum GithubTokenResponse {
    Pair(TokenAnswer),
    Error(GithubTokenError),
}

/// The body of the OAuth Applications API's requests. It is read as JSON whatever its
/// `Content-Type` says, as GitHub reads it.
#[derive(ToSchema)]
pub struct AccessTokenBody {
    /// A token that cannot be one of refreshd's GitHub access tokens is not found (404).
    #[schema(pattern = "^gh[ou]_[0-9A-Za-z]{36}$")]
    access_token: String,
}

/// One complaint of a `Validation Failed` error.
#[derive(ToSchema)]
pub struct ValidationItem {
    /// `OauthAccess`.
    resource: String,
    field: String,
    /// `missing_field` or `invalid`.
    code: String,
}

/// An error of GitHub's REST API.
#[derive(ToSchema)]
pub struct GithubRestError {
    /// `Requires authentication`, `Bad credentials`, `Not Found`, `Validation Failed`,
    /// `Problems parsing JSON`, `Request body too large` or `Service unavailable`.
    message: String,
    documentation_url: String,
    /// The HTTP status, as a string.
    #[schema(pattern = "^[0-9]{3}$")]
    status: String,
    /// With `Validation Failed` only.
    errors: Option<Vec<ValidationItem>>,
}

/// The errors of the OAuth Applications API, in the order they are checked.
#[derive(utoipa::IntoResponses)]
pub enum ApplicationsErrors {
    /// `Problems parsing JSON`: a body that is not a JSON object, or could not be read
    #[response(status = 400)]
    BadRequest(GithubRestError),
    /// `Requires authentication` (no credentials) or `Bad credentials`
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"GitHub\"`")))]
    Unauthorized(GithubRestError),
    /// `Not Found`: the credentials are not the app's the path names, or the token is not a live
    /// token of that app
    #[response(status = 404)]
    NotFound(GithubRestError),
    /// `Request body too large`: over 64 KiB
    #[response(status = 413)]
    TooLarge(GithubRestError),
    /// `Validation Failed`: `access_token` is missing (`missing_field`) or not a string
    /// (`invalid`)
    #[response(status = 422)]
    Validation(GithubRestError),
    /// `Service unavailable`: the database cannot be used
    #[response(status = 503)]
    Unavailable(GithubRestError),
}

/// The "simple user" GitHub embeds in other objects.
#[derive(ToSchema)]
pub struct SimpleUser {
    login: String,
    id: i64,
    node_id: String,
    avatar_url: String,
    gravatar_id: String,
    url: String,
    html_url: String,
    followers_url: String,
    following_url: String,
    gists_url: String,
    starred_url: String,
    subscriptions_url: String,
    organizations_url: String,
    repos_url: String,
    events_url: String,
    received_events_url: String,
    /// `User`.
    r#type: String,
    site_admin: bool,
}

/// The authenticated user, as `GET /user` answers it: the simple user's fields and these.
#[derive(ToSchema)]
pub struct PrivateUser {
    login: String,
    id: i64,
    node_id: String,
    avatar_url: String,
    url: String,
    html_url: String,
    r#type: String,
    site_admin: bool,
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true)]
    email: Option<String>,
    #[schema(required = true)]
    company: Option<String>,
    blog: String,
    #[schema(required = true)]
    location: Option<String>,
    #[schema(required = true)]
    bio: Option<String>,
    #[schema(required = true)]
    hireable: Option<bool>,
    #[schema(required = true)]
    twitter_username: Option<String>,
    public_repos: i64,
    public_gists: i64,
    followers: i64,
    following: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// The app an authorization belongs to.
#[derive(ToSchema)]
pub struct AuthorizationApp {
    /// The app's first registered redirect URI.
    #[schema(required = true)]
    url: Option<String>,
    name: String,
    client_id: String,
}

/// An OAuth authorization: the token presented (or the new one after a reset), its app and
/// its user.
#[derive(ToSchema)]
pub struct Authorization {
    id: i64,
    url: String,
    scopes: Vec<String>,
    token: String,
    token_last_eight: String,
    /// SHA-256 of the token, in hex.
    hashed_token: String,
    app: AuthorizationApp,
    #[schema(required = true)]
    note: Option<String>,
    #[schema(required = true)]
    note_url: Option<String>,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true)]
    fingerprint: Option<String>,
    /// Null for a token that does not expire.
    #[schema(required = true, format = DateTime)]
    expires_at: Option<String>,
    user: SimpleUser,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoogleGrantType {
    AuthorizationCode,
    RefreshToken,
    /// The device flow's poll; needs the client secret too, as Google does.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

/// The parameters of Google's token request, from the query string, a form or a JSON object
/// of strings (the body wins). An empty value counts as absent.
#[derive(ToSchema)]
pub struct GoogleTokenRequest {
    /// Another value is answered 400 `unsupported_grant_type`.
    grant_type: GoogleGrantType,
    /// Required unless the client authenticates with HTTP Basic.
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Required with `authorization_code`.
    code: Option<String>,
    /// Required with `authorization_code`: the one the code was issued for.
    redirect_uri: Option<String>,
    /// PKCE: required when the code was issued with a challenge.
    #[schema(pattern = "^[A-Za-z0-9._~-]{43,128}$")]
    code_verifier: Option<String>,
    /// Required with `refresh_token`: a `1//` token.
    refresh_token: Option<String>,
    /// Required with the device-code grant.
    device_code: Option<String>,
}

/// `POST /device/code`'s parameters.
#[derive(ToSchema)]
pub struct GoogleDeviceCodeRequest {
    /// The client's id; the client must have the device flow on.
    #[schema(max_length = 100)]
    client_id: String,
    /// Scopes, space-separated.
    scope: String,
}

/// A started device authorization, in Google's shape.
#[derive(ToSchema)]
pub struct GoogleDeviceCode {
    /// 40 hex characters, for polling `/token`.
    device_code: String,
    /// `XXXX-XXXX`, for the user to enter at `verification_url`.
    #[schema(pattern = "^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")]
    user_code: String,
    /// `{public_url}/device` (Google's field name).
    verification_url: String,
    /// Seconds the codes live: 1800.
    expires_in: i64,
    /// Seconds to wait between polls: 5.
    interval: i64,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoogleErrorCode {
    /// 400: a missing parameter or an unreadable body; 413; 415; 401 from userinfo; 405.
    InvalidRequest,
    /// 400.
    UnsupportedGrantType,
    /// 401: an unknown client or a wrong secret.
    InvalidClient,
    /// 400: an unknown code or refresh token, or a PKCE mismatch.
    InvalidGrant,
    /// 400.
    RedirectUriMismatch,
    /// 428 (device-code grant): the user has not decided yet.
    AuthorizationPending,
    /// 403 (device-code grant): polled too soon.
    SlowDown,
    /// 403 (device-code grant): the user cancelled.
    AccessDenied,
    /// 400 (device-code grant): the code expired.
    ExpiredToken,
    /// 400: an unknown, expired or revoked token (revoke, tokeninfo).
    InvalidToken,
    /// 503.
    TemporarilyUnavailable,
}

/// An error of Google's dialect.
#[derive(ToSchema)]
pub struct GoogleError {
    error: GoogleErrorCode,
    error_description: String,
}

/// The parameter of `POST /revoke`, from the query string or a form (or JSON) body.
#[derive(ToSchema)]
pub struct RevokeRequest {
    /// An access token (`ya29.`) or a refresh token (`1//`); without one, 400
    /// `invalid_request`.
    token: Option<String>,
}

/// The parameter of `/tokeninfo`, from the query string or a form (or JSON) body.
#[derive(ToSchema)]
pub struct TokenInfoRequest {
    /// Or as `Authorization: Bearer`; without either (or `id_token`), 400 `invalid_request`.
    access_token: Option<String>,
    /// An id_token to verify instead; wins over `access_token`.
    id_token: Option<String>,
}

/// `POST /revoke` answers an empty object.
#[derive(ToSchema)]
pub struct Revoked {}

/// Google's token introspection; numbers are strings, as Google's.
#[derive(ToSchema)]
pub struct TokenInfo {
    /// The client id the token was issued to.
    azp: String,
    aud: String,
    /// The user's id.
    sub: String,
    /// Space-separated scopes.
    scope: String,
    /// Unix time, in seconds.
    #[schema(pattern = "^-?[0-9]+$")]
    exp: String,
    #[schema(pattern = "^[0-9]+$")]
    expires_in: String,
    /// `offline`.
    access_type: String,
    /// With the `email` scope, when the user has an address.
    email: Option<String>,
    /// `true`, with `email`.
    email_verified: Option<String>,
}

/// What `/tokeninfo` answers: an access token's introspection, or an id_token's claims.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum TokenInfoAnswer {
    AccessToken(TokenInfo),
    IdToken(IdTokenInfo),
}

/// A verified id_token's claims and its header's `alg`, `kid` and `typ`, every value a string,
/// as Google's tokeninfo answers them.
#[derive(ToSchema)]
pub struct IdTokenInfo {
    /// The issuer (`issuer` of the discovery document).
    iss: String,
    /// The client id the id_token was issued to.
    azp: String,
    aud: String,
    /// The user's id, as `/oauth2/v3/userinfo` answers it.
    sub: String,
    /// With the `email` scope, when the user has an email address.
    email: Option<String>,
    /// `true`, with `email`.
    email_verified: Option<String>,
    at_hash: String,
    /// From the authorize request, in the id_token of a code exchange.
    nonce: Option<String>,
    /// With the `profile` scope (also `picture`, `given_name`, `family_name`).
    name: Option<String>,
    picture: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    /// Unix time, in seconds.
    #[schema(pattern = "^[0-9]+$")]
    iat: String,
    #[schema(pattern = "^[0-9]+$")]
    exp: String,
    /// `RS256`.
    alg: String,
    /// The signing key's id, as `/oauth2/v3/certs` lists it.
    kid: String,
    /// `JWT`.
    typ: String,
}

/// Google's OpenID Connect userinfo.
#[derive(ToSchema)]
pub struct UserInfo {
    sub: String,
    /// With the `profile` scope (the login when the user has no name).
    name: Option<String>,
    /// With `profile`: `name`'s first word and the rest, split as in the id_token.
    given_name: Option<String>,
    family_name: Option<String>,
    /// With `profile`.
    picture: Option<String>,
    /// With the `email` scope, when the user has an address.
    email: Option<String>,
    email_verified: Option<bool>,
}

/// `GET /.well-known/openid-configuration`: Google's fields, refreshd's URLs.
#[derive(ToSchema)]
pub struct OpenIdConfiguration {
    /// `oidc_issuer`: id_tokens' `iss`.
    issuer: String,
    authorization_endpoint: String,
    device_authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    revocation_endpoint: String,
    /// `{public_url}/oauth2/v3/certs`.
    jwks_uri: String,
    response_types_supported: Vec<String>,
    subject_types_supported: Vec<String>,
    id_token_signing_alg_values_supported: Vec<String>,
    scopes_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    claims_supported: Vec<String>,
    code_challenge_methods_supported: Vec<String>,
    grant_types_supported: Vec<String>,
}

/// One published id_token signing key.
#[derive(ToSchema)]
pub struct Jwk {
    /// `RSA`.
    kty: String,
    /// `sig`.
    #[schema(rename = "use")]
    usage: String,
    /// `RS256`.
    alg: String,
    kid: String,
    /// The modulus, base64url without padding.
    n: String,
    /// The public exponent, base64url without padding.
    e: String,
}

/// `GET /oauth2/v3/certs`: the keys id_tokens are signed with, or may still be verified with.
#[derive(ToSchema)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

/// `GET /oauth2/v1/certs`: each published key's self-signed X.509 certificate (PEM), by kid.
#[derive(ToSchema)]
pub struct PemCerts(std::collections::BTreeMap<String, String>);

/// The bodies that may be left out: their one parameter may come in the query string.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in ["/revoke", "/tokeninfo"] {
            let post = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut());
            if let Some(body) = post.and_then(|op| op.request_body.as_mut()) {
                body.required = Some(utoipa::openapi::Required::False);
            }
        }
    }
}

/// The provider's security schemes.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let schemes = [
            (
                "basic",
                HttpAuthScheme::Basic,
                "An app's `client_id:client_secret` (each form-urlencoded first, as RFC 6749 §2.3.1 asks). The app must be of the route's dialect.",
            ),
            (
                "githubToken",
                HttpAuthScheme::Bearer,
                "An access token refreshd issued in GitHub's dialect (`ghu_…` or `gho_…`); `GET /user` also accepts GitHub's older `Authorization: token …`.",
            ),
            (
                "googleToken",
                HttpAuthScheme::Bearer,
                "An access token refreshd issued in Google's dialect (`ya29.…`).",
            ),
        ];
        for (name, scheme, description) in schemes {
            let scheme = HttpBuilder::new()
                .scheme(scheme)
                .description(Some(description))
                .build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// The OpenAPI description of both dialects' endpoints.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::github::token::access_token,
        crate::github::device::device_code,
        crate::github::applications::check,
        crate::github::applications::reset,
        crate::github::applications::delete_token,
        crate::github::applications::delete_grant,
        crate::github::user::me,
        crate::google::token::token,
        crate::google::device::device_code,
        crate::google::tokens::revoke,
        crate::google::tokens::tokeninfo,
        crate::google::tokens::tokeninfo_post,
        crate::google::tokens::userinfo,
        crate::google::discovery::openid_configuration,
        crate::google::discovery::userinfo,
        crate::google::certs::jwks,
        crate::google::certs::pem_certs,
    ),
    components(schemas(
        TokenAnswer,
        GithubTokenRequest,
        GithubTokenResponse,
        GithubTokenError,
        GithubDeviceCodeRequest,
        GithubDeviceCodeResponse,
        AccessTokenBody,
        GithubRestError,
        Authorization,
        PrivateUser,
        GoogleTokenRequest,
        GoogleDeviceCodeRequest,
        GoogleDeviceCode,
        GoogleError,
        RevokeRequest,
        TokenInfoRequest,
        Revoked,
        TokenInfo,
        TokenInfoAnswer,
        IdTokenInfo,
        UserInfo,
        OpenIdConfiguration,
        Jwk,
        JwkSet,
        PemCerts,
    )),
    modifiers(&Security, &OptionalBodies)
)]
pub struct ProviderApi;
