//! Google's OAuth errors: `{"error", "error_description"}` with Google's statuses and texts.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use refreshd_store::StoreError;
use serde_json::json;

use crate::params::ParamsError;

#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    #[error("Missing required parameter: {0}")]
    MissingParameter(&'static str),
    #[error("Invalid grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("The OAuth client was not found.")]
    ClientNotFound,
    #[error("Unauthorized")]
    WrongSecret,
    #[error("Token has been expired or revoked.")]
    ExpiredOrRevoked,
    #[error("Malformed auth code.")]
    BadCode,
    #[error("Invalid code verifier.")]
    BadVerifier,
    #[error("Bad Request")]
    RedirectUriMismatch,
    #[error("Token expired or revoked")]
    RevokeUnknownToken,
    #[error("Invalid Value")]
    TokenInfoUnknownToken,
    #[error("Invalid Credentials")]
    InvalidCredentials,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// The client has the device flow off (Google's answer to a wrong client type).
    #[error("Invalid client type.")]
    DeviceFlowDisabled,
    /// Too many scopes, or one too long (device flow start).
    #[error("Some requested scopes were invalid.")]
    InvalidScope,
    /// Too many device codes asked for from one address (`device::START_LIMITS`).
    #[error("Too Many Requests")]
    TooManyDeviceCodes,
    /// The user has not decided yet (device-code grant).
    #[error("Precondition Required")]
    AuthorizationPending,
    /// Polled sooner than the interval allows; Google gives no new interval.
    #[error("Forbidden")]
    SlowDown,
    /// The user cancelled.
    #[error("Forbidden")]
    AccessDenied,
    #[error("Bad Request")]
    ExpiredDeviceCode,
    /// Unknown, another client's, or redeemed already.
    #[error("Bad Request")]
    UnknownDeviceCode,
    #[error("{0}")]
    Params(#[from] ParamsError),
    #[error("Service unavailable, try again")]
    Unavailable(#[from] StoreError),
    #[error("Service unavailable, try again")]
    IdToken(#[from] crate::oidc::SignError),
}

impl GoogleError {
    fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            Self::MissingParameter(_) => ("invalid_request", StatusCode::BAD_REQUEST),
            Self::UnsupportedGrantType(_) => ("unsupported_grant_type", StatusCode::BAD_REQUEST),
            Self::ClientNotFound | Self::WrongSecret | Self::DeviceFlowDisabled => {
                ("invalid_client", StatusCode::UNAUTHORIZED)
            }
            Self::ExpiredOrRevoked
            | Self::BadCode
            | Self::BadVerifier
            | Self::UnknownDeviceCode => ("invalid_grant", StatusCode::BAD_REQUEST),
            Self::RedirectUriMismatch => ("redirect_uri_mismatch", StatusCode::BAD_REQUEST),
            Self::InvalidScope => ("invalid_scope", StatusCode::BAD_REQUEST),
            Self::RevokeUnknownToken | Self::TokenInfoUnknownToken => {
                ("invalid_token", StatusCode::BAD_REQUEST)
            }
            Self::InvalidCredentials => ("invalid_request", StatusCode::UNAUTHORIZED),
            Self::MethodNotAllowed => ("invalid_request", StatusCode::METHOD_NOT_ALLOWED),
            Self::AuthorizationPending => {
                ("authorization_pending", StatusCode::PRECONDITION_REQUIRED)
            }
            Self::SlowDown => ("slow_down", StatusCode::FORBIDDEN),
            Self::TooManyDeviceCodes => ("slow_down", StatusCode::TOO_MANY_REQUESTS),
            Self::AccessDenied => ("access_denied", StatusCode::FORBIDDEN),
            Self::ExpiredDeviceCode => ("expired_token", StatusCode::BAD_REQUEST),
            Self::Params(e) => ("invalid_request", e.status()),
            Self::Unavailable(_) | Self::IdToken(_) => {
                ("temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        if let Self::Unavailable(e) = &self {
            tracing::error!(error = %e, "Google-dialect request could not use storage");
        }
        if let Self::IdToken(e) = &self {
            tracing::error!(error = %e, "cannot sign an id_token");
        }
        let (code, status) = self.code_and_status();
        let body = json!({ "error": code, "error_description": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(self, Self::TooManyDeviceCodes) {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::device::RETRY_AFTER_SECS),
            );
        }
        if matches!(self, Self::InvalidCredentials) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
                ),
            );
        }
        response
    }
}
