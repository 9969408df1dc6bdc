//! The broker's one error envelope: `{"success": false, "error", "message"}` with the right
//! status. Cloneable, because every caller of one single-flight refresh gets the same answer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use refreshd_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Clone, Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {} bytes", crate::MAX_BODY_BYTES)]
    TooLarge,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("this endpoint does not accept that method")]
    MethodNotAllowed,
    /// The upstream refused the refresh token or code; its own error code is kept.
    #[error("{message}")]
    InvalidGrant {
        upstream_error: String,
        message: String,
    },
    #[error("the {0} upstream is not configured on this refreshd")]
    NotConfigured(&'static str),
    #[error("{0}")]
    Upstream(String),
    #[error(
        "the {0} upstream did not answer in time; the refresh may or may not have happened upstream"
    )]
    UpstreamTimeout(&'static str),
    #[error(
        "the connection to the {0} upstream broke; the refresh may or may not have happened upstream"
    )]
    UpstreamInterrupted(&'static str),
    #[error("refreshd cannot use its database right now; try again")]
    Unavailable(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    /// The upstream refused a connection's grant: nothing is tried until it is replaced.
    #[error("{message}")]
    ConnectionBroken {
        upstream_error: String,
        message: String,
    },
    /// A connection's refreshes failed and the next attempt must wait.
    #[error("{message}")]
    BackingOff {
        retry_after_secs: i64,
        message: String,
    },
}

impl BrokerError {
    /// Whether the upstream may have refreshed the token although no answer arrived.
    pub(crate) fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::UpstreamTimeout(_) | Self::UpstreamInterrupted(_)
        )
    }

    fn code_and_status(&self) -> (ErrorCode, StatusCode) {
        match self {
            Self::InvalidRequest(_) => (ErrorCode::InvalidRequest, StatusCode::BAD_REQUEST),
            Self::TooLarge => (ErrorCode::InvalidRequest, StatusCode::PAYLOAD_TOO_LARGE),
            Self::Unauthorized(_) => (ErrorCode::Unauthorized, StatusCode::UNAUTHORIZED),
            Self::Forbidden(_) => (ErrorCode::Forbidden, StatusCode::FORBIDDEN),
            Self::MethodNotAllowed => (ErrorCode::MethodNotAllowed, StatusCode::METHOD_NOT_ALLOWED),
            Self::InvalidGrant { .. } => (ErrorCode::InvalidGrant, StatusCode::BAD_REQUEST),
            Self::NotConfigured(_) => (
                ErrorCode::ProviderNotConfigured,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            Self::Upstream(_) | Self::UpstreamInterrupted(_) => {
                (ErrorCode::UpstreamError, StatusCode::BAD_GATEWAY)
            }
            Self::UpstreamTimeout(_) => (ErrorCode::UpstreamTimeout, StatusCode::GATEWAY_TIMEOUT),
            Self::Unavailable(_) => (ErrorCode::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            Self::NotFound(_) => (ErrorCode::NotFound, StatusCode::NOT_FOUND),
            Self::ConnectionBroken { .. } => (ErrorCode::ConnectionBroken, StatusCode::CONFLICT),
            Self::BackingOff { .. } => (ErrorCode::BackingOff, StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

/// Every broker error.
// Fields in alphabetical order, the order the envelope has always had.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    error: ErrorCode,
    message: String,
    /// Always `false`.
    success: bool,
    /// With `invalid_grant` and `connection_broken`: the upstream's own error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_error: Option<String>,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a body that is not a JSON object (or not sent as JSON), a missing field; 413.
    InvalidRequest,
    /// 401.
    Unauthorized,
    /// 403: a session token where only an API key will do.
    Forbidden,
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
    /// 404: no connection with that id.
    NotFound,
    /// 409: the upstream refused the connection's grant; replace the connection.
    ConnectionBroken,
    /// 503 with `Retry-After`: the connection's refreshes failed, its access token has
    /// expired, and the next attempt must wait.
    BackingOff,
}

/// The errors every authenticated broker endpoint may answer, as the API document lists them.
#[allow(dead_code)] // listed in the document, never built: a `BrokerError` is what is answered
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

/// The error of the endpoints only a backend's API key may call, besides `BrokerErrors`.
#[allow(dead_code)] // listed in the document, never built: a `BrokerError` is what is answered
#[derive(utoipa::IntoResponses)]
pub enum KeyOnlyErrors {
    /// `forbidden`: a session token, where only an API key will do
    #[response(status = 403)]
    Forbidden(ErrorEnvelope),
}

/// The errors of the endpoints for one connection, besides `BrokerErrors`.
#[allow(dead_code)] // listed in the document, never built: a `BrokerError` is what is answered
#[derive(utoipa::IntoResponses)]
pub enum ConnectionErrors {
    /// `not_found`: no connection with that id
    #[response(status = 404)]
    NotFound(ErrorEnvelope),
    /// `connection_broken`: the upstream refused the grant (`upstreamError` says how); only
    /// replacing the connection mends it
    #[response(status = 409)]
    Broken(ErrorEnvelope),
    /// `backing_off`: refreshes failed, the access token has expired, and the next attempt
    /// must wait (`Retry-After`, seconds)
    #[response(status = 503, headers(("Retry-After" = i64, description = "Seconds")))]
    BackingOff(ErrorEnvelope),
}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable(e) => {
                tracing::error!(error = %e, "broker request could not use storage")
            }
            Self::Upstream(m) => tracing::warn!(reason = %m, "upstream error"),
            _ => {}
        }
        let (error, status) = self.code_and_status();
        let upstream_error = match &self {
            Self::InvalidGrant { upstream_error, .. }
            | Self::ConnectionBroken { upstream_error, .. } => Some(upstream_error.clone()),
            _ => None,
        };
        let envelope = ErrorEnvelope {
            error,
            message: self.to_string(),
            success: false,
            upstream_error,
        };
        let mut response = (status, Json(envelope)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::BackingOff {
            retry_after_secs, ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: BrokerError) -> (StatusCode, String) {
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Byte for byte what the broker has always answered: keys in alphabetical order, and
    /// `upstreamError` only with `invalid_grant`.
    #[tokio::test]
    async fn the_envelope_keeps_its_bytes() {
        assert_eq!(
            answer(BrokerError::InvalidGrant {
                upstream_error: "bad_refresh_token".into(),
                message: "gone".into(),
            })
            .await,
            (
                StatusCode::BAD_REQUEST,
                r#"{"error":"invalid_grant","message":"gone","success":false,"upstreamError":"bad_refresh_token"}"#.into()
            )
        );
        assert_eq!(
            answer(BrokerError::NotConfigured("google")).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"provider_not_configured","message":"the google upstream is not configured on this refreshd","success":false}"#.into()
            )
        );
    }
}
