//! What callers send: each endpoint's request, read from a JSON object sent as JSON. Fields
//! are checked by hand rather than by serde, so a refusal says which field was wrong and how.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use refreshd_core::ConnectionId;

use super::connections::{connection_id_field, metadata_field};
use crate::error::BrokerError;

/// Longest token or code accepted from a caller; real ones are far shorter.
const MAX_TOKEN_LEN: usize = 4096;

// `POST /auth/github/refresh` and `POST /auth/google/refresh`. Carries a token, so no `Debug`
// (nor on the others). A doc comment here would be the schema's description.
#[derive(ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the previous OAuth flow: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub refresh_token: String,
}

// `POST /auth/github`.
#[derive(ToSchema)]
pub struct CodeRequest {
    /// The authorization code: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub code: String,
    /// Also keep the grant as this connection (1-128 of `A-Z a-z 0-9 - _ . ~`), created or
    /// replaced as by `POST /connections`. The answer then names it in `connectionId`, and its
    /// `refreshToken` is `null`: refreshd holds the grant.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128)]
    pub connection_id: Option<ConnectionId>,
    /// The connection's metadata, with `connection_id` only: a JSON object, at most 4 KiB
    /// serialized.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<String>,
}

// `POST /auth/google/exchange`.
#[derive(ToSchema)]
pub struct GoogleExchangeRequest {
    /// The authorization code: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub code: String,
    /// The redirect URI the code was issued for (default: the configured
    /// `google.redirect_uri`; without either, 400).
    #[schema(min_length = 1)]
    pub redirect_uri: Option<String>,
    /// Also keep the grant as this connection (1-128 of `A-Z a-z 0-9 - _ . ~`), created or
    /// replaced as by `POST /connections`. The answer then names it in `connectionId`, and its
    /// `refreshToken` is `null`: refreshd holds the grant.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128)]
    pub connection_id: Option<ConnectionId>,
    /// The connection's metadata, with `connection_id` only: a JSON object, at most 4 KiB
    /// serialized.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<String>,
}

// `POST /auth/google`.
#[derive(ToSchema)]
pub struct GoogleLoginRequest {
    /// A Google access token, verified through the userinfo endpoint: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub token: String,
}

/// A request read from the fields of the body's JSON object.
pub trait FromFields: Sized {
    fn from_fields(fields: Map<String, Value>) -> Result<Self, BrokerError>;
}

impl FromFields for RefreshRequest {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, BrokerError> {
        Ok(Self {
            refresh_token: string_field(&mut fields, "refresh_token")?,
        })
    }
}

impl FromFields for CodeRequest {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, BrokerError> {
        let code = string_field(&mut fields, "code")?;
        let (connection_id, metadata) = kept_as(&mut fields)?;
        Ok(Self {
            code,
            connection_id,
            metadata,
        })
    }
}

/// A login's optional `connection_id` and `metadata`, read as `POST /connections` reads them;
/// metadata without a connection to keep it with is refused rather than dropped.
fn kept_as(
    fields: &mut Map<String, Value>,
) -> Result<(Option<ConnectionId>, Option<String>), BrokerError> {
    let connection_id = connection_id_field(fields)?;
    let metadata = metadata_field(fields)?;
    if connection_id.is_none() && metadata.is_some() {
        return Err(BrokerError::InvalidRequest(
            "\"metadata\" is kept with a connection: send \"connection_id\" too".into(),
        ));
    }
    Ok((connection_id, metadata))
}

impl FromFields for GoogleExchangeRequest {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, BrokerError> {
        let code = string_field(&mut fields, "code")?;
        // One the caller sends must be a real one: an empty string would reach Google as none,
        // and Google's refusal would look like the upstream's fault.
        let redirect_uri = match fields.remove("redirect_uri") {
            None | Some(Value::Null) => None,
            Some(Value::String(uri)) if !uri.is_empty() => Some(uri),
            Some(_) => {
                return Err(BrokerError::InvalidRequest(
                    "\"redirect_uri\" must be a non-empty string".into(),
                ));
            }
        };
        let (connection_id, metadata) = kept_as(&mut fields)?;
        Ok(Self {
            code,
            redirect_uri,
            connection_id,
            metadata,
        })
    }
}

impl FromFields for GoogleLoginRequest {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, BrokerError> {
        Ok(Self {
            token: string_field(&mut fields, "token")?,
        })
    }
}

/// A handler's request, read from its body: a JSON object sent as JSON, else a clear 400 (or
/// 413).
pub struct Body<T>(pub T);

impl<T: FromFields, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = BrokerError;

    async fn from_request(request: Request, state: &S) -> Result<Self, BrokerError> {
        let media = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        // A body too large is told as such whatever its Content-Type.
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|r| match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => BrokerError::TooLarge,
                _ => BrokerError::InvalidRequest("the request body could not be read".into()),
            })?;
        if !media
            .as_deref()
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"))
        {
            return Err(BrokerError::InvalidRequest(
                "Content-Type must be application/json".into(),
            ));
        }
        match serde_json::from_slice(&body) {
            Ok(Value::Object(fields)) => T::from_fields(fields).map(Self),
            _ => Err(BrokerError::InvalidRequest(
                "the body must be a JSON object".into(),
            )),
        }
    }
}

/// A required, non-empty string field. A missing field and a malformed one are told apart, so
/// a caller who sent a token learns it was the token's form that was refused.
pub(super) fn string_field(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<String, BrokerError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Err(BrokerError::InvalidRequest(format!(
            "\"{name}\" is required"
        ))),
        // Tokens and codes are printable ASCII; anything else could not travel in a header.
        Some(Value::String(value))
            if !value.is_empty()
                && value.len() <= MAX_TOKEN_LEN
                && value.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(value)
        }
        Some(_) => Err(BrokerError::InvalidRequest(format!(
            "\"{name}\" must be a non-empty string of printable ASCII, at most {MAX_TOKEN_LEN} characters"
        ))),
    }
}

/// An optional string field: absent, `null`, or a non-empty string.
pub(super) fn optional_string(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<String>, BrokerError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if !value.is_empty() => Ok(Some(value)),
        Some(_) => Err(BrokerError::InvalidRequest(format!(
            "\"{name}\" must be a non-empty string"
        ))),
    }
}
