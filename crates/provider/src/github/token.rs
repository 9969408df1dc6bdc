//! `POST /login/oauth/access_token`: the authorization_code and refresh_token grants.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use refreshd_core::audit::AUDIT;
use refreshd_core::seal::{self, Purpose};
use refreshd_core::{Dialect, RefreshToken};
use refreshd_store::{App, Rotate, Rotation, StoreError};
use serde::Serialize;

use super::format::Format;
use crate::Provider;
use crate::client_auth::{self, Basic, Credentials};
use crate::code::{self, CodeMismatch, ExchangeError};
use crate::issue::{IssueError, Occasion, TokenAnswer, mint};
use crate::params::{Params, ParamsError};

const TROUBLESHOOTING: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";
const DEVICE_FLOW_ERRORS: &str = "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow";

/// The token endpoint's failures. GitHub answers its own codes with HTTP 200.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("The client_id and/or client_secret passed are incorrect.")]
    IncorrectClientCredentials,
    #[error("The code passed is incorrect or expired.")]
    BadVerificationCode,
    #[error("The refresh token passed is incorrect or expired.")]
    BadRefreshToken,
    #[error("The redirect_uri MUST match the registered callback URL for this application.")]
    RedirectUriMismatch,
    #[error("The grant type is not supported.")]
    UnsupportedGrantType,
    #[error("Device Flow must be explicitly enabled for this App")]
    DeviceFlowDisabled,
    #[error("{}", crate::scopes::TOO_MANY)]
    InvalidScope,
    /// Too many device codes asked for from one address (`device::START_LIMITS`).
    #[error("Too many device codes were requested from this address. Wait before asking again.")]
    TooManyDeviceCodes,
    #[error("The authorization request is still pending.")]
    AuthorizationPending,
    /// Polled too soon; the device must wait `interval` seconds between polls from now on.
    #[error("Too many requests have been made in the same timeframe.")]
    SlowDown { interval: i64 },
    #[error("The device_code has expired.")]
    ExpiredToken,
    #[error("The authorization request was denied.")]
    AccessDenied,
    #[error("The device_code provided is not valid.")]
    IncorrectDeviceCode,
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("refreshd cannot reach its database right now; try again.")]
    Unavailable(#[from] StoreError),
}

impl From<IssueError> for TokenError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Store(e) => Self::Unavailable(e),
            IssueError::ChallengeMethod => Self::BadVerificationCode,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_uri: Option<String>,
    /// `slow_down` only: the seconds to wait between polls from now on.
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<i64>,
}

impl TokenError {
    fn code_status_anchor(&self) -> (&'static str, StatusCode, Option<&'static str>) {
        match self {
            Self::IncorrectClientCredentials => (
                "incorrect_client_credentials",
                StatusCode::OK,
                Some("incorrect-client-credentials"),
            ),
            Self::BadVerificationCode => (
                "bad_verification_code",
                StatusCode::OK,
                Some("bad-verification-code"),
            ),
            Self::BadRefreshToken => (
                "bad_refresh_token",
                StatusCode::OK,
                Some("bad-refresh-token"),
            ),
            Self::RedirectUriMismatch => (
                "redirect_uri_mismatch",
                StatusCode::OK,
                Some("redirect-uri-mismatch2"),
            ),
            Self::UnsupportedGrantType => (
                "unsupported_grant_type",
                StatusCode::OK,
                Some("unsupported-grant-type"),
            ),
            Self::DeviceFlowDisabled => ("device_flow_disabled", StatusCode::OK, None),
            Self::InvalidScope => ("invalid_scope", StatusCode::OK, None),
            Self::TooManyDeviceCodes => ("slow_down", StatusCode::TOO_MANY_REQUESTS, None),
            Self::AuthorizationPending => ("authorization_pending", StatusCode::OK, None),
            Self::SlowDown { .. } => ("slow_down", StatusCode::OK, None),
            Self::ExpiredToken => ("expired_token", StatusCode::OK, None),
            Self::AccessDenied => ("access_denied", StatusCode::OK, None),
            Self::IncorrectDeviceCode => ("incorrect_device_code", StatusCode::OK, None),
            Self::Params(e) => ("invalid_request", e.status(), None),
            Self::Unavailable(_) => (
                "temporarily_unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
        }
    }

    /// The device flow's errors point at the device flow's error table.
    fn is_device_flow_error(&self) -> bool {
        matches!(
            self,
            Self::DeviceFlowDisabled
                | Self::TooManyDeviceCodes
                | Self::AuthorizationPending
                | Self::SlowDown { .. }
                | Self::ExpiredToken
                | Self::AccessDenied
                | Self::IncorrectDeviceCode
        )
    }

    pub(super) fn render(&self, format: Format) -> Response {
        if let Self::Unavailable(e) = self {
            tracing::error!(error = %e, "token endpoint could not use storage");
        }
        let (code, status, anchor) = self.code_status_anchor();
        let body = ErrorBody {
            error: code,
            error_description: self.to_string(),
            error_uri: if self.is_device_flow_error() {
                Some(DEVICE_FLOW_ERRORS.to_owned())
            } else {
                anchor.map(|a| format!("{TROUBLESHOOTING}/#{a}"))
            },
            interval: match self {
                Self::SlowDown { interval } => Some(*interval),
                _ => None,
            },
        };
        let mut response = format.render(status, &body);
        if matches!(self, Self::TooManyDeviceCodes) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(crate::device::RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// Exchange a code or a refresh token for a token pair (GitHub's dialect).
#[utoipa::path(
    post,
    path = "/login/oauth/access_token",
    operation_id = "githubAccessToken",
    tag = "GitHub OAuth",
    security((), ("basic" = [])),
    request_body(
        description = "Also read from the query string (the body wins). Client credentials come as HTTP Basic or as `client_id` and `client_secret`.",
        content(
            (crate::api_doc::GithubTokenRequest = "application/x-www-form-urlencoded"),
            (crate::api_doc::GithubTokenRequest = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "A token pair, or GitHub's error with status 200 as GitHub answers it; as JSON, XML (`<OAuth>…</OAuth>`) or a form, chosen by `Accept` (`application/json`, `application/xml`, anything else)",
            content(
                (crate::api_doc::GithubTokenResponse = "application/json"),
                (String = "application/xml"),
                (String = "application/x-www-form-urlencoded"),
            )),
        (status = 400, description = "`invalid_request`: a body that is not UTF-8, a JSON object of strings or a valid form. Errors come in the format `Accept` chose",
            content(
                (crate::api_doc::GithubTokenError = "application/json"),
                (String = "application/xml"),
                (String = "application/x-www-form-urlencoded"),
            )),
        (status = 413, description = "`invalid_request`: a body over 64 KiB",
            content(
                (crate::api_doc::GithubTokenError = "application/json"),
                (String = "application/xml"),
                (String = "application/x-www-form-urlencoded"),
            )),
        (status = 415, description = "`invalid_request`: a body neither form nor JSON",
            content(
                (crate::api_doc::GithubTokenError = "application/json"),
                (String = "application/xml"),
                (String = "application/x-www-form-urlencoded"),
            )),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used",
            content(
                (crate::api_doc::GithubTokenError = "application/json"),
                (String = "application/xml"),
                (String = "application/x-www-form-urlencoded"),
            )),
    )
)]
pub async fn access_token(
    State(provider): State<Provider>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let format = Format::negotiate(&headers);
    match grant(&provider, &headers, query.as_deref(), body).await {
        Ok(answer) => format.render(StatusCode::OK, &answer),
        Err(e) => e.render(format),
    }
}

async fn grant(
    provider: &Provider,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<TokenAnswer, TokenError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let params = Params::parse(query, headers, &body)?;
    if params.get("grant_type") == Some(crate::device::GRANT_TYPE) {
        // A device is a public client: it presents its client id only.
        return super::device::poll(provider, headers, &params).await;
    }
    let credentials = match client_auth::basic(headers) {
        Basic::Present(credentials) => credentials,
        Basic::Malformed => return Err(TokenError::IncorrectClientCredentials),
        Basic::Absent => Credentials {
            client_id: params.get("client_id").unwrap_or_default().to_owned(),
            secret: refreshd_core::ClientSecret::from_presented(
                params.get("client_secret").unwrap_or_default(),
            ),
        },
    };
    let authenticated = if params.get("grant_type") == Some("refresh_token") {
        let presented = params
            .get("refresh_token")
            .and_then(|raw| RefreshToken::parse(raw).ok())
            .map(|token| token.digest());
        client_auth::authenticate_refresh(provider, &credentials, presented, Dialect::Github)
            .await?
    } else {
        client_auth::authenticate(provider, &credentials, Dialect::Github).await?
    };
    let app = authenticated.map_err(|_| TokenError::IncorrectClientCredentials)?;
    match (params.get("grant_type"), params.get("code")) {
        (Some("refresh_token"), _) => refresh(provider, &app, &params).await,
        (Some("authorization_code") | None, Some(code)) => {
            exchange_code(provider, &app, &params, code).await
        }
        (Some("authorization_code") | None, None) => Err(TokenError::BadVerificationCode),
        (Some(_), _) => Err(TokenError::UnsupportedGrantType),
    }
}

async fn exchange_code(
    provider: &Provider,
    app: &App,
    params: &Params,
    code: &str,
) -> Result<TokenAnswer, TokenError> {
    let (redirect_uri, verifier) = (params.get("redirect_uri"), params.get("code_verifier"));
    code::exchange(provider, app, code, redirect_uri, verifier)
        .await
        .map_err(|e| match e {
            ExchangeError::UnknownCode | ExchangeError::Mismatch(CodeMismatch::Verifier) => {
                TokenError::BadVerificationCode
            }
            ExchangeError::Mismatch(CodeMismatch::RedirectUri) => TokenError::RedirectUriMismatch,
            ExchangeError::Store(e) => TokenError::Unavailable(e),
        })
        .map(|exchanged| exchanged.answer)
}

/// Rotates a refresh token. The successor's answer is sealed under the presented token so a
/// grace replay can return it without refreshd keeping tokens in clear.
async fn refresh(
    provider: &Provider,
    app: &App,
    params: &Params,
) -> Result<TokenAnswer, TokenError> {
    let count = |outcome| crate::grants::count(Dialect::Github, "refresh_token", outcome);
    let Some(presented) = params
        .get("refresh_token")
        .and_then(|raw| RefreshToken::parse(raw).ok())
    else {
        count("refused");
        return Err(TokenError::BadRefreshToken);
    };
    let now = provider.clock.now();
    let minted = mint(app, Occasion::Refresh, "", &provider.lifetimes, now);
    let access = minted.answer.access_token;
    let refresh = minted
        .answer
        .refresh_token
        .expect("an expiring pair has a refresh token");
    // Only the two tokens are sealed; the rest of the answer is rebuilt on a replay.
    let sealed = seal::seal(
        Purpose::GraceReplay,
        presented.expose(),
        format!("{access} {refresh}").as_bytes(),
    );
    let rotated = provider
        .store
        .rotate_refresh(
            Rotate {
                presented: presented.digest(),
                app_id: app.id,
                successor: minted.pair,
                sealed,
                grace_window_secs: provider.lifetimes.grace_window_secs,
            },
            now,
        )
        .await;
    let rotation = rotated.inspect_err(|_| count("failed"))?;
    let (access, refresh, grant) = match rotation {
        Rotation::Rotated { grant } => {
            count("rotated");
            (access, refresh, grant)
        }
        Rotation::Replay { sealed, grant } => {
            let unsealed = seal::unseal(Purpose::GraceReplay, presented.expose(), &sealed)
                .and_then(|plain| String::from_utf8(plain).ok());
            let Some((access, refresh)) = unsealed.as_deref().and_then(|p| p.split_once(' '))
            else {
                count("refused");
                return Err(TokenError::BadRefreshToken);
            };
            count("grace_replay");
            (access.to_owned(), refresh.to_owned(), grant)
        }
        Rotation::FamilyRevoked => {
            count("reuse_family_revoked");
            tracing::warn!(
                target: AUDIT,
                event = "token.reuse_detected",
                client_id = %app.client_id,
                "a rotated refresh token was used again after its grace window; its whole token family is revoked"
            );
            return Err(TokenError::BadRefreshToken);
        }
        Rotation::Rejected => {
            count("refused");
            return Err(TokenError::BadRefreshToken);
        }
    };
    Ok(TokenAnswer::expiring(
        access,
        refresh,
        grant.scopes.to_github(),
        &provider.lifetimes,
    ))
}
