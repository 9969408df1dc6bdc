//! Errors of GitHub's REST API, in its wire shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use refreshd_store::StoreError;
use serde_json::json;

use crate::params::ParamsError;

const DOCS: &str = "https://docs.github.com/rest";

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("Requires authentication")]
    RequiresAuthentication,
    #[error("Bad credentials")]
    BadCredentials,
    #[error("Not Found")]
    NotFound,
    /// A required field is missing or of the wrong type.
    #[error("Validation Failed")]
    Validation {
        field: &'static str,
        code: &'static str,
    },
    #[error("Problems parsing JSON")]
    ProblemsParsingJson,
    #[error("Request body too large")]
    TooLarge,
    #[error("Service unavailable")]
    Unavailable(#[from] StoreError),
}

impl From<ParamsError> for RestError {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::TooLarge => Self::TooLarge,
            _ => Self::ProblemsParsingJson,
        }
    }
}

impl RestError {
    fn status(&self) -> StatusCode {
        match self {
            Self::RequiresAuthentication | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ProblemsParsingJson => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        if let Self::Unavailable(e) = &self {
            tracing::error!(error = %e, "REST request could not use storage");
        }
        let status = self.status();
        let mut body = json!({
            "message": self.to_string(),
            "documentation_url": DOCS,
            "status": status.as_u16().to_string(),
        });
        if let Self::Validation { field, code } = self {
            body["errors"] = json!([{ "resource": "OauthAccess", "field": field, "code": code }]);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Basic realm=\"GitHub\""),
            );
        }
        response
    }
}

/// Any route refreshd does not serve.
pub async fn not_found() -> RestError {
    RestError::NotFound
}
