//! The connections API as it travels: what `POST /connections` takes, and what the
//! connection endpoints answer. No answer here carries a refresh token; only `TokenReply`
//! carries an access token.

use refreshd_core::{ConnectionId, Timestamp, Upstream};
use refreshd_store::Connection;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::request::{FromFields, optional_string, string_field};
use crate::error::BrokerError;

/// The largest `metadata` accepted, serialized.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Which upstream a connection's grant is with.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Github,
    Google,
}

impl From<Upstream> for Provider {
    fn from(upstream: Upstream) -> Self {
        match upstream {
            Upstream::Github => Self::Github,
            Upstream::Google => Self::Google,
        }
    }
}

// `POST /connections`: an authorization code (`code`, with `redirect_uri` and `code_verifier`
// as the flow had them) or a refresh token to import, exactly one of the two.
#[derive(ToSchema)]
pub struct CreateConnection {
    #[schema(value_type = Provider)]
    pub provider: Upstream,
    /// An authorization code: printable ASCII.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub code: Option<String>,
    /// The redirect URI the code was issued for (Google: default the configured
    /// `google.redirect_uri`).
    #[schema(min_length = 1)]
    pub redirect_uri: Option<String>,
    /// The code's PKCE verifier, if the flow used one.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub code_verifier: Option<String>,
    /// A refresh token to import; it is refreshed once at once, to prove it works.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    pub refresh_token: Option<String>,
    /// The connection's id (1-128 of `A-Z a-z 0-9 - _ . ~`); default a new `conn_…`. An
    /// existing connection with this id is replaced.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128)]
    pub connection_id: Option<ConnectionId>,
    /// The caller's own JSON object, kept with the connection: at most 4 KiB serialized.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<String>,
}

impl FromFields for CreateConnection {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, BrokerError> {
        let provider = match fields.remove("provider") {
            Some(Value::String(name)) => Upstream::parse(&name),
            _ => None,
        }
        .ok_or_else(|| {
            BrokerError::InvalidRequest("\"provider\" must be \"github\" or \"google\"".into())
        })?;
        let present = |fields: &Map<String, Value>, name: &str| {
            fields.get(name).is_some_and(|v| !v.is_null())
        };
        let (code, refresh_token) =
            match (present(&fields, "code"), present(&fields, "refresh_token")) {
                (true, false) => (Some(string_field(&mut fields, "code")?), None),
                (false, true) => (None, Some(string_field(&mut fields, "refresh_token")?)),
                _ => {
                    return Err(BrokerError::InvalidRequest(
                        "send exactly one of \"code\" and \"refresh_token\"".into(),
                    ));
                }
            };
        let connection_id = connection_id_field(&mut fields)?;
        let metadata = metadata_field(&mut fields)?;
        Ok(Self {
            provider,
            code,
            redirect_uri: optional_string(&mut fields, "redirect_uri")?,
            code_verifier: optional_string(&mut fields, "code_verifier")?,
            refresh_token,
            connection_id,
            metadata,
        })
    }
}

/// The optional `connection_id`: 1-128 URL-safe characters.
pub(super) fn connection_id_field(
    fields: &mut Map<String, Value>,
) -> Result<Option<ConnectionId>, BrokerError> {
    match fields.remove("connection_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(raw)) => ConnectionId::parse(&raw).map(Some).ok_or_else(|| {
            BrokerError::InvalidRequest(
                "\"connection_id\" must be 1-128 characters of A-Z a-z 0-9 - _ . ~".into(),
            )
        }),
        Some(_) => Err(BrokerError::InvalidRequest(
            "\"connection_id\" must be a string".into(),
        )),
    }
}

/// The optional `metadata`: a JSON object, kept serialized, at most `MAX_METADATA_BYTES`.
pub(super) fn metadata_field(
    fields: &mut Map<String, Value>,
) -> Result<Option<String>, BrokerError> {
    match fields.remove("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(object @ Value::Object(_)) => {
            let text = object.to_string();
            if text.len() > MAX_METADATA_BYTES {
                return Err(BrokerError::InvalidRequest(format!(
                    "\"metadata\" must be at most {MAX_METADATA_BYTES} bytes serialized"
                )));
            }
            Ok(Some(text))
        }
        Some(_) => Err(BrokerError::InvalidRequest(
            "\"metadata\" must be a JSON object".into(),
        )),
    }
}

/// Milliseconds, as every time in the broker's answers.
fn ms(at: Timestamp) -> i64 {
    at.secs().saturating_mul(1000)
}

/// The scopes in the upstream's own form: GitHub's comma-separated, Google's space-separated.
pub fn scope_text(connection: &Connection) -> String {
    match connection.upstream {
        Upstream::Github => connection.tokens.scopes.to_github(),
        Upstream::Google => connection.tokens.scopes.to_spaced(),
    }
}

/// `POST /connections` and `POST /connections/{id}/refresh`: the connection as saved.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSaved {
    connection_id: String,
    /// When the access token expires, Unix time in milliseconds; `null`: never.
    #[schema(required = true)]
    expires_at: Option<i64>,
    provider: Provider,
    /// The scopes granted, in the upstream's form.
    scope: String,
    success: bool,
}

impl From<&Connection> for ConnectionSaved {
    fn from(connection: &Connection) -> Self {
        Self {
            connection_id: connection.id.to_string(),
            expires_at: connection.tokens.access_expires_at.map(ms),
            provider: connection.upstream.into(),
            scope: scope_text(connection),
            success: true,
        }
    }
}

/// `GET /connections/{id}/token`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenReply {
    /// A working access token.
    pub access_token: String,
    pub connection_id: String,
    /// When the access token expires, Unix time in milliseconds; `null`: never.
    #[schema(required = true)]
    pub expires_at: Option<i64>,
    /// The scopes granted, in the upstream's form.
    pub scope: String,
    pub success: bool,
}

/// A connection's state, never a token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    connection_id: String,
    /// Unix time in milliseconds.
    created_at: i64,
    /// When the access token expires, Unix time in milliseconds; `null`: never.
    #[schema(required = true)]
    expires_at: Option<i64>,
    /// Failed refreshes since the last one that worked.
    failure_count: i64,
    /// What the last failure was; `null` after a refresh that worked.
    #[schema(required = true)]
    last_error: Option<String>,
    /// When its tokens were last obtained, Unix time in milliseconds.
    last_refreshed_at: i64,
    /// The creator's object.
    #[schema(required = true, value_type = Option<Object>)]
    metadata: Option<Value>,
    provider: Provider,
    /// When the refresh token expires, Unix time in milliseconds; `null`: never, or none.
    #[schema(required = true)]
    refresh_token_expires_at: Option<i64>,
    /// While backing off: no refresh before this, Unix time in milliseconds.
    #[schema(required = true)]
    retry_after: Option<i64>,
    scopes: Vec<String>,
    /// `live`, `broken` or `backing_off`.
    status: &'static str,
    /// Unix time in milliseconds.
    updated_at: i64,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            connection_id: c.id.to_string(),
            created_at: ms(c.created_at),
            expires_at: c.tokens.access_expires_at.map(ms),
            failure_count: c.failure_count,
            last_error: c.last_error.clone(),
            last_refreshed_at: ms(c.last_refreshed_at),
            metadata: c
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            provider: c.upstream.into(),
            refresh_token_expires_at: c.tokens.refresh_expires_at.map(ms),
            retry_after: c.retry_after.map(ms),
            scopes: c.tokens.scopes.as_slice().to_vec(),
            status: c.status.as_str(),
            updated_at: ms(c.updated_at),
        }
    }
}

/// `GET /connections/{id}`.
#[derive(Serialize, ToSchema)]
pub struct ConnectionShown {
    pub connection: ConnectionView,
    pub success: bool,
}

/// `GET /connections`: one page, in id order.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPage {
    pub connections: Vec<ConnectionView>,
    /// The `cursor` of the next page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    pub success: bool,
}

/// `DELETE /connections/{id}`: deleted here; whether the upstream revoked the grant too.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDeleted {
    pub success: bool,
    /// Why the upstream did not revoke the grant, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_error: Option<String>,
    pub upstream_revoked: bool,
}
