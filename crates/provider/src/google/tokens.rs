//! Google's token introspection and revocation: `POST /revoke`, `GET|POST /tokeninfo`,
//! `GET /oauth2/v3/userinfo`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use refreshd_core::{AccessToken, Dialect, RefreshToken, TokenDigest, TokenKind};
use refreshd_store::Authorization;
use serde_json::{Value, json};

use super::error::GoogleError;
use crate::Provider;
use crate::oidc::id_token::Identity;
use crate::params::{Params, ParamsError};

/// A live Google-dialect access token's authorization.
async fn authorization(
    provider: &Provider,
    raw: &str,
) -> Result<Option<Authorization>, GoogleError> {
    let Some(token) = AccessToken::parse(raw)
        .ok()
        .filter(|t| t.kind() == TokenKind::GoogleAccess)
    else {
        return Ok(None);
    };
    let auth = provider
        .store
        .find_authorization(token.digest(), provider.clock.now())
        .await?;
    Ok(auth.filter(|a| a.app.kind.dialect() == Dialect::Google))
}

/// `POST /revoke?token=…` (or in the form): revokes the grant the access or refresh token
/// belongs to, as Google does.
#[utoipa::path(post, path = "/revoke", operation_id = "googleRevoke", tag = "Google OAuth",
    params(("token" = Option<String>, Query, description = "An access (`ya29.`) or refresh (`1//`) token; or in the body")),
    request_body(content(
        (crate::api_doc::RevokeRequest = "application/x-www-form-urlencoded"),
        (crate::api_doc::RevokeRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Revoked: the whole grant", body = crate::api_doc::Revoked),
        (status = 400, description = "`invalid_request` (no token, an unreadable body) or `invalid_token` (not a live token)", body = crate::api_doc::GoogleError),
        (status = 413, description = "`invalid_request`: a body over 64 KiB", body = crate::api_doc::GoogleError),
        (status = 415, description = "`invalid_request`: a body neither form nor JSON", body = crate::api_doc::GoogleError),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn revoke(
    State(provider): State<Provider>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, GoogleError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let params = Params::parse(query.as_deref(), &headers, &body)?;
    let raw = params
        .get("token")
        .ok_or(GoogleError::MissingParameter("token"))?;
    let well_formed = AccessToken::parse(raw).is_ok_and(|t| t.kind() == TokenKind::GoogleAccess)
        || RefreshToken::parse(raw).is_ok_and(|t| t.kind() == TokenKind::GoogleRefresh);
    if !well_formed {
        return Err(GoogleError::RevokeUnknownToken);
    }
    match provider
        .store
        .revoke_family_of(TokenDigest::of(raw), provider.clock.now())
        .await?
    {
        true => Ok(Json(json!({}))),
        false => Err(GoogleError::RevokeUnknownToken),
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    crate::client_auth::token_of(headers, &["bearer"])
}

/// `GET /tokeninfo?access_token=…` (or the token as Bearer, as google-auth-library sends it):
/// Google's introspection; numbers are strings, as Google's. `?id_token=…` (which wins over an
/// access token) answers the verified id_token's claims instead.
#[utoipa::path(get, path = "/tokeninfo", operation_id = "googleTokenInfo", tag = "Google OAuth",
    security((), ("googleToken" = [])),
    params(
        ("access_token" = Option<String>, Query, description = "Or as `Authorization: Bearer`"),
        ("id_token" = Option<String>, Query, description = "An id_token to verify (RS256, a key `/oauth2/v3/certs` publishes, not expired; any audience); wins over `access_token`"),
    ),
    responses(
        (status = 200, description = "The access token's introspection, or the id_token's claims", body = crate::api_doc::TokenInfoAnswer),
        (status = 400, description = "`invalid_request` (no token) or `invalid_token` (not a live Google-dialect access token; an id_token malformed, tampered with, expired or signed by a key not published)", body = crate::api_doc::GoogleError),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn tokeninfo(
    State(provider): State<Provider>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, GoogleError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let params = Params::parse(query.as_deref(), &headers, &body)?;
    if let Some(id_token) = params.get("id_token") {
        return id_token_info(&provider, id_token).await;
    }
    let raw = params
        .get("access_token")
        .or_else(|| bearer(&headers))
        .ok_or(GoogleError::MissingParameter("access_token"))?;
    let auth = authorization(&provider, raw)
        .await?
        .ok_or(GoogleError::TokenInfoUnknownToken)?;
    let now = provider.clock.now().secs();
    let exp = auth.access_expires_at.map(|t| t.secs()).unwrap_or(now);
    let mut info = json!({
        "azp": auth.app.client_id.as_str(),
        "aud": auth.app.client_id.as_str(),
        "sub": auth.user.id.to_string(),
        "scope": auth.scopes.to_spaced(),
        "exp": exp.to_string(),
        "expires_in": (exp - now).max(0).to_string(),
        "access_type": "offline",
    });
    // What the id_token says of the user's address, with the same scope.
    if let Some(email) = identity(&provider, &auth).email {
        info["email"] = json!(email);
        info["email_verified"] = json!("true");
    }
    Ok(Json(info))
}

/// What `auth`'s scopes let its app know of the user: what its id_token says.
fn identity(provider: &Provider, auth: &Authorization) -> Identity {
    Identity::of(
        &auth.user,
        &auth.scopes,
        provider.avatar_url(&auth.user.login),
    )
}

/// `/tokeninfo?id_token=…`: the claims of an id_token refreshd signed with a key it publishes
/// and that has not expired, every value a string, with the header's `alg`, `kid` and `typ`;
/// any other, 400 `invalid_token` (`Invalid Value`), as Google answers.
async fn id_token_info(provider: &Provider, raw: &str) -> Result<Json<Value>, GoogleError> {
    let published = super::certs::published(provider).await?;
    let now = provider.clock.now();
    let verified = crate::oidc::id_token::verify(raw, &published, now).map_err(|e| {
        tracing::debug!(reason = %e, "tokeninfo refused an id_token");
        GoogleError::TokenInfoUnknownToken
    })?;
    let mut info = serde_json::Map::new();
    if let Value::Object(claims) = json!(verified.claims) {
        for (name, value) in claims {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            info.insert(name, Value::String(text));
        }
    }
    let header = verified.header;
    info.insert("alg".into(), json!(header.alg));
    for (name, value) in [("kid", header.kid), ("typ", header.typ)] {
        if let Some(value) = value {
            info.insert(name.into(), Value::String(value));
        }
    }
    Ok(Json(Value::Object(info)))
}

/// `POST /tokeninfo`, as Google accepts it: the same introspection, the token in the form too.
#[utoipa::path(post, path = "/tokeninfo", operation_id = "googleTokenInfoPost", tag = "Google OAuth",
    security((), ("googleToken" = [])),
    params(
        ("access_token" = Option<String>, Query, description = "Or in the body, or as `Authorization: Bearer`"),
        ("id_token" = Option<String>, Query, description = "Or in the body: an id_token to verify; wins over `access_token`"),
    ),
    request_body(content(
        (crate::api_doc::TokenInfoRequest = "application/x-www-form-urlencoded"),
        (crate::api_doc::TokenInfoRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The access token's introspection, or the id_token's claims", body = crate::api_doc::TokenInfoAnswer),
        (status = 400, description = "`invalid_request` (no token, an unreadable body) or `invalid_token` (not a live Google-dialect access token; an id_token malformed, tampered with, expired or signed by a key not published)", body = crate::api_doc::GoogleError),
        (status = 413, description = "`invalid_request`: a body over 64 KiB", body = crate::api_doc::GoogleError),
        (status = 415, description = "`invalid_request`: a body neither form nor JSON", body = crate::api_doc::GoogleError),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn tokeninfo_post(
    provider: State<Provider>,
    headers: HeaderMap,
    query: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, GoogleError> {
    tokeninfo(provider, headers, query, body).await
}

/// `GET /oauth2/v3/userinfo` with `Authorization: Bearer ya29.…`: `sub`, and what the token's
/// scopes let its app know of the user, as its id_token says it (`profile`: name, given and
/// family names, picture; `email`: email, email_verified).
#[utoipa::path(get, path = "/oauth2/v3/userinfo", operation_id = "googleUserInfo", tag = "Google OAuth",
    security(("googleToken" = [])),
    responses(
        (status = 200, description = "The token's user", body = crate::api_doc::UserInfo),
        (status = 401, description = "`invalid_request`: Invalid Credentials (no Bearer token, or not a live Google-dialect access token)",
            body = crate::api_doc::GoogleError,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"`"))),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn userinfo(
    State(provider): State<Provider>,
    headers: HeaderMap,
) -> Result<Json<Value>, GoogleError> {
    let raw = bearer(&headers).ok_or(GoogleError::InvalidCredentials)?;
    let auth = authorization(&provider, raw)
        .await?
        .ok_or(GoogleError::InvalidCredentials)?;
    let mut info = json!(identity(&provider, &auth));
    info["sub"] = json!(auth.user.id.to_string());
    Ok(Json(info))
}
