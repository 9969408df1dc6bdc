//! The broker's one error envelope: `{"success": false, "error", "message"}` with the right
//! status. Cloneable, because every caller of one single-flight refresh gets the same answer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use refreshd_store::StoreError;
use serde_json::json;

#[derive(Clone, Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {} bytes", crate::MAX_BODY_BYTES)]
    TooLarge,
    #[error("{0}")]
    Unauthorized(&'static str),
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
}

impl BrokerError {
    /// Whether the upstream may have refreshed the token although no answer arrived.
    pub(crate) fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::UpstreamTimeout(_) | Self::UpstreamInterrupted(_)
        )
    }

    fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            Self::InvalidRequest(_) => ("invalid_request", StatusCode::BAD_REQUEST),
            Self::TooLarge => ("invalid_request", StatusCode::PAYLOAD_TOO_LARGE),
            Self::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            Self::MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            Self::InvalidGrant { .. } => ("invalid_grant", StatusCode::BAD_REQUEST),
            Self::NotConfigured(_) => ("provider_not_configured", StatusCode::SERVICE_UNAVAILABLE),
            Self::Upstream(_) | Self::UpstreamInterrupted(_) => {
                ("upstream_error", StatusCode::BAD_GATEWAY)
            }
            Self::UpstreamTimeout(_) => ("upstream_timeout", StatusCode::GATEWAY_TIMEOUT),
            Self::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        }
    }
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
        let (code, status) = self.code_and_status();
        let mut body = json!({ "success": false, "error": code, "message": self.to_string() });
        if let Self::InvalidGrant { upstream_error, .. } = &self {
            body["upstreamError"] = json!(upstream_error);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
