//! GitHub's device flow: `POST /login/device/code` starts it; the device polls
//! `POST /login/oauth/access_token` with the device-code grant (`poll`). Every answer,
//! errors included, has status 200 and comes in the format `Accept` chose.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use refreshd_core::Dialect;
use refreshd_store::App;
use serde::Serialize;

use super::format::Format;
use super::token::TokenError;
use crate::device::{self, Polled, StartError};
use crate::issue::TokenAnswer;
use crate::params::{Params, ParamsError};
use crate::web::ClientAddress;
use crate::{Provider, client_auth};

/// Seconds a device code lives, as GitHub answers it.
pub const EXPIRES_IN_SECS: i64 = 899;

/// The answer to a started device authorization, fields in alphabetical order.
#[derive(Serialize)]
struct DeviceCodeAnswer {
    device_code: String,
    expires_in: i64,
    interval: i64,
    user_code: String,
    verification_uri: String,
}

/// Start a device authorization (GitHub's device flow).
#[utoipa::path(
    post,
    path = "/login/device/code",
    operation_id = "githubDeviceCode",
    tag = "GitHub OAuth",
    request_body(
        description = "Also read from the query string (the body wins). No client secret: a device is a public client.",
        content(
            (crate::api_doc::GithubDeviceCodeRequest = "application/x-www-form-urlencoded"),
            (crate::api_doc::GithubDeviceCodeRequest = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "The device and user codes, or GitHub's error (`incorrect_client_credentials`, `device_flow_disabled`, `invalid_scope` for more than 50 scopes or one over 200 bytes) with status 200; as JSON, XML (`<OAuth>…</OAuth>`) or a form, chosen by `Accept`",
            content(
                (crate::api_doc::GithubDeviceCodeResponse = "application/json"),
                (String = "application/xml"),
                (String = "application/x-www-form-urlencoded"),
            )),
        (status = 400, description = "`invalid_request`: a body that is not UTF-8, a JSON object of strings or a valid form",
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
        (status = 429, description = "`slow_down`: this address started 30 device authorizations for the app, or 60 in all, in the last 15 minutes; `Retry-After` says when to ask again",
            headers(("Retry-After" = String, description = "Seconds: 900")),
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
pub async fn device_code(
    State(provider): State<Provider>,
    client: ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let format = Format::negotiate(&headers);
    match start(&provider, &client, &headers, query.as_deref(), body).await {
        Ok(answer) => format.render(StatusCode::OK, &answer),
        Err(e) => e.render(format),
    }
}

async fn start(
    provider: &Provider,
    client: &ClientAddress,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<DeviceCodeAnswer, TokenError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let params = Params::parse(query, headers, &body)?;
    let app = device_app(provider, headers, &params).await?;
    let scope = params.get("scope").unwrap_or_default();
    let started = device::start(provider, &app, scope, EXPIRES_IN_SECS, client)
        .await
        .map_err(|e| match e {
            StartError::Disabled => TokenError::DeviceFlowDisabled,
            StartError::InvalidScope => TokenError::InvalidScope,
            StartError::TooMany => TokenError::TooManyDeviceCodes,
            StartError::Store(e) => TokenError::Unavailable(e),
        })?;
    Ok(DeviceCodeAnswer {
        device_code: started.device_code,
        expires_in: started.expires_in,
        interval: started.interval,
        user_code: started.user_code.display(),
        verification_uri: format!("{}/login/device", provider.public_url),
    })
}

/// The GitHub app a device names by its client id.
async fn device_app(
    provider: &Provider,
    headers: &HeaderMap,
    params: &Params,
) -> Result<App, TokenError> {
    let client_id = client_auth::public_client_id(headers, params);
    client_auth::find_client(provider, &client_id, Dialect::Github)
        .await?
        .ok_or(TokenError::IncorrectClientCredentials)
}

/// A device's poll with the device-code grant.
pub(super) async fn poll(
    provider: &Provider,
    headers: &HeaderMap,
    params: &Params,
) -> Result<TokenAnswer, TokenError> {
    let app = device_app(provider, headers, params).await?;
    // A missing code is an unknown one (after the app's device flow switch is looked at).
    let device_code = params.get("device_code").unwrap_or_default();
    match device::poll(provider, &app, device_code).await? {
        Polled::Issued(answer) => Ok(answer),
        Polled::Pending => Err(TokenError::AuthorizationPending),
        Polled::SlowDown { interval } => Err(TokenError::SlowDown { interval }),
        Polled::Expired => Err(TokenError::ExpiredToken),
        Polled::Denied => Err(TokenError::AccessDenied),
        Polled::Unknown => Err(TokenError::IncorrectDeviceCode),
        Polled::Disabled => Err(TokenError::DeviceFlowDisabled),
    }
}
