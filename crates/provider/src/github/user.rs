//! `GET /user`: the user an access token belongs to, so issued tokens are usable.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use refreshd_core::{AccessToken, Dialect};

use super::objects;
use super::rest_error::RestError;
use crate::Provider;
use crate::client_auth::{self, Authorization};

/// Accepts `Authorization: Bearer <token>` and GitHub's older `token <token>`.
fn bearer(headers: &HeaderMap) -> Result<&str, RestError> {
    match client_auth::authorization(headers) {
        Authorization::Absent => Err(RestError::RequiresAuthentication),
        Authorization::Scheme(scheme, token)
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") =>
        {
            Ok(token)
        }
        _ => Err(RestError::BadCredentials),
    }
}

/// The authenticated user (`Authorization: Bearer <token>` or `token <token>`).
#[utoipa::path(get, path = "/user", operation_id = "githubGetAuthenticatedUser", tag = "GitHub REST",
    security(("githubToken" = [])),
    responses(
        (status = 200, description = "GitHub's user object", body = crate::api_doc::PrivateUser,
            headers(("X-OAuth-Scopes" = String, description = "The token's scopes, comma-separated"))),
        (status = 401, description = "`Requires authentication` (no `Authorization`) or `Bad credentials`",
            body = crate::api_doc::GithubRestError,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"GitHub\"`"))),
        (status = 503, description = "`Service unavailable`: the database cannot be used", body = crate::api_doc::GithubRestError),
    ))]
pub async fn me(
    State(provider): State<Provider>,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let token = AccessToken::parse(bearer(&headers)?).map_err(|_| RestError::BadCredentials)?;
    let auth = provider
        .store
        .find_authorization(token.digest(), provider.clock.now())
        .await?
        .filter(|auth| auth.app.kind.dialect() == Dialect::Github)
        .ok_or(RestError::BadCredentials)?;
    let mut response = Json(objects::full_user(&provider, &auth.user)).into_response();
    let scopes = auth.scopes.as_slice().join(", ");
    if let Ok(value) = HeaderValue::from_str(&scopes) {
        response.headers_mut().insert("x-oauth-scopes", value);
    }
    Ok(response)
}
