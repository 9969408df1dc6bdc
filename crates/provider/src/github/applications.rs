//! GitHub's OAuth Applications API: check, reset and delete a token, delete a grant.
//! Every route authenticates the app with HTTP Basic client_id:client_secret.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use refreshd_core::audit::AUDIT;
use refreshd_core::{AccessToken, Dialect};
use refreshd_store::{App, NewAccess};

use super::objects;
use super::rest_error::RestError;
use crate::Provider;
use crate::client_auth::{self, Basic};
use crate::params::ParamsError;

/// The `{client_id}` of the path; one that is not even UTF-8 names no app.
pub struct ClientIdPath(String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIdPath {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, RestError> {
        let Path(client_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| RestError::NotFound)?;
        Ok(Self(client_id))
    }
}

/// The app whose credentials came with the request; it must be the app the path names.
async fn authenticated_app(
    provider: &Provider,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<App, RestError> {
    let credentials = match client_auth::basic(headers) {
        Basic::Present(credentials) => credentials,
        Basic::Absent => return Err(RestError::RequiresAuthentication),
        Basic::Malformed => return Err(RestError::BadCredentials),
    };
    let app = client_auth::authenticate(provider, &credentials, Dialect::Github)
        .await?
        .map_err(|_| RestError::BadCredentials)?;
    if app.client_id.as_str() != client_id {
        return Err(RestError::NotFound);
    }
    Ok(app)
}

/// The `access_token` of a JSON body. Like GitHub, the body is read as JSON whatever its
/// `Content-Type` says (curl's `-d` sends a form type). A token that cannot be one of ours is
/// simply not found, without a lookup.
fn presented_token(body: Result<Bytes, BytesRejection>) -> Result<AccessToken, RestError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let missing = RestError::Validation {
        field: "access_token",
        code: "missing_field",
    };
    if body.is_empty() {
        return Err(missing);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| RestError::ProblemsParsingJson)?;
    let object = value.as_object().ok_or(RestError::ProblemsParsingJson)?;
    match object.get("access_token") {
        None | Some(serde_json::Value::Null) => Err(missing),
        Some(serde_json::Value::String(raw)) => {
            AccessToken::parse(raw).map_err(|_| RestError::NotFound)
        }
        Some(_) => Err(RestError::Validation {
            field: "access_token",
            code: "invalid",
        }),
    }
}

/// Check a token: 200 with the authorization object, or 404.
#[utoipa::path(post, path = "/applications/{client_id}/token", operation_id = "githubCheckToken", tag = "GitHub OAuth Applications API",
    security(("basic" = [])),
    params(("client_id" = String, Path, description = "The app's client id; it must be the app whose credentials come with the request")),
    request_body = crate::api_doc::AccessTokenBody,
    responses((status = 200, description = "The authorization object", body = crate::api_doc::Authorization), crate::api_doc::ApplicationsErrors))]
pub async fn check(
    State(provider): State<Provider>,
    ClientIdPath(client_id): ClientIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let app = authenticated_app(&provider, &headers, &client_id).await?;
    let token = presented_token(body)?;
    let auth = provider
        .store
        .find_authorization(token.digest(), provider.clock.now())
        .await?
        .filter(|auth| auth.app.id == app.id)
        .ok_or(RestError::NotFound)?;
    Ok(Json(objects::authorization(&provider, &auth, token.expose())).into_response())
}

/// Reset a token: a new token replaces the presented one at once.
#[utoipa::path(patch, path = "/applications/{client_id}/token", operation_id = "githubResetToken", tag = "GitHub OAuth Applications API",
    security(("basic" = [])),
    params(("client_id" = String, Path, description = "The app's client id; it must be the app whose credentials come with the request")),
    request_body = crate::api_doc::AccessTokenBody,
    responses((status = 200, description = "The authorization object with the new `token`", body = crate::api_doc::Authorization), crate::api_doc::ApplicationsErrors))]
pub async fn reset(
    State(provider): State<Provider>,
    ClientIdPath(client_id): ClientIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let app = authenticated_app(&provider, &headers, &client_id).await?;
    let old = presented_token(body)?;
    let now = provider.clock.now();
    let current = provider
        .store
        .find_authorization(old.digest(), now)
        .await?
        .filter(|auth| auth.app.id == app.id)
        .ok_or(RestError::NotFound)?;
    let new = AccessToken::generate(old.kind());
    let replacement = NewAccess {
        digest: new.digest(),
        last_eight: new.last_eight().to_owned(),
        expires_at: current
            .access_expires_at
            .map(|_| now.plus_secs(provider.lifetimes.access_token_secs)),
    };
    let auth = provider
        .store
        .reset_access(app.id, old.digest(), replacement, now)
        .await?
        .ok_or(RestError::NotFound)?;
    Ok(Json(objects::authorization(&provider, &auth, new.expose())).into_response())
}

/// Delete a token: 204, or 404 for a token that is not live.
#[utoipa::path(delete, path = "/applications/{client_id}/token", operation_id = "githubDeleteToken", tag = "GitHub OAuth Applications API",
    security(("basic" = [])),
    params(("client_id" = String, Path, description = "The app's client id; it must be the app whose credentials come with the request")),
    request_body = crate::api_doc::AccessTokenBody,
    responses((status = 204, description = "Revoked"), crate::api_doc::ApplicationsErrors))]
pub async fn delete_token(
    State(provider): State<Provider>,
    ClientIdPath(client_id): ClientIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, RestError> {
    revoke(&provider, &client_id, &headers, body, Revocation::Token).await
}

/// Delete an app authorization: revokes every token of the token's user for the app.
#[utoipa::path(delete, path = "/applications/{client_id}/grant", operation_id = "githubDeleteAuthorization", tag = "GitHub OAuth Applications API",
    security(("basic" = [])),
    params(("client_id" = String, Path, description = "The app's client id; it must be the app whose credentials come with the request")),
    request_body = crate::api_doc::AccessTokenBody,
    responses((status = 204, description = "Revoked: every token of the grant"), crate::api_doc::ApplicationsErrors))]
pub async fn delete_grant(
    State(provider): State<Provider>,
    ClientIdPath(client_id): ClientIdPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, RestError> {
    revoke(&provider, &client_id, &headers, body, Revocation::Grant).await
}

enum Revocation {
    Token,
    Grant,
}

async fn revoke(
    provider: &Provider,
    client_id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    what: Revocation,
) -> Result<StatusCode, RestError> {
    let app = authenticated_app(provider, headers, client_id).await?;
    let token = presented_token(body)?;
    let now = provider.clock.now();
    let revoked = match what {
        Revocation::Token => {
            provider
                .store
                .revoke_access(app.id, token.digest(), now)
                .await?
        }
        Revocation::Grant => {
            provider
                .store
                .revoke_grant(app.id, token.digest(), now)
                .await?
        }
    };
    if revoked {
        if matches!(what, Revocation::Grant) {
            tracing::info!(
                target: AUDIT,
                event = "app.revoked",
                client_id = %app.client_id,
                via = "applications API",
                "the app deleted a user's authorization"
            );
        }
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(RestError::NotFound)
    }
}
