//! Google's device flow: `POST /device/code` starts it; the device polls `POST /token` with
//! the device-code grant (`poll`), authenticating with its client secret as Google requires.
//! Errors come in Google's shapes and statuses: pending 428, slow_down and access_denied 403.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use refreshd_core::Dialect;
use refreshd_store::App;
use serde::Serialize;

use super::error::GoogleError;
use crate::device::{self, Polled, StartError};
use crate::issue::TokenAnswer;
use crate::params::{Params, ParamsError};
use crate::web::ClientAddress;
use crate::{Provider, client_auth};

/// Seconds a device code lives, as Google answers it.
pub const EXPIRES_IN_SECS: i64 = 1800;

/// Where the user enters the code: the device page, at Google's path name.
pub const VERIFICATION_PATH: &str = "/device";

/// The answer to a started device authorization, in Google's field order.
#[derive(Serialize)]
struct DeviceCodeAnswer {
    device_code: String,
    user_code: String,
    verification_url: String,
    expires_in: i64,
    interval: i64,
}

/// Start a device authorization (Google's device flow).
#[utoipa::path(post, path = "/device/code", operation_id = "googleDeviceCode", tag = "Google OAuth",
    request_body(
        description = "Also read from the query string (the body wins). No client secret here; the poll at `/token` needs it.",
        content(
            (crate::api_doc::GoogleDeviceCodeRequest = "application/x-www-form-urlencoded"),
            (crate::api_doc::GoogleDeviceCodeRequest = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "The device and user codes; `verification_url` is `{public_url}/device`", body = crate::api_doc::GoogleDeviceCode),
        (status = 400, description = "`invalid_request`: a missing `client_id` or `scope`, an unreadable body; `invalid_scope`: more than 50 scopes or one over 200 bytes", body = crate::api_doc::GoogleError),
        (status = 401, description = "`invalid_client`: an unknown client, or one with the device flow off (\"Invalid client type.\")", body = crate::api_doc::GoogleError),
        (status = 413, description = "`invalid_request`: a body over 64 KiB", body = crate::api_doc::GoogleError),
        (status = 415, description = "`invalid_request`: a body neither form nor JSON", body = crate::api_doc::GoogleError),
        (status = 429, description = "`slow_down` (\"Too Many Requests\"): this address started 30 device authorizations for the client, or 60 in all, in the last 15 minutes; `Retry-After` says when to ask again",
            body = crate::api_doc::GoogleError,
            headers(("Retry-After" = String, description = "Seconds: 900"))),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn device_code(
    State(provider): State<Provider>,
    client: ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GoogleError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let params = Params::parse(query.as_deref(), &headers, &body)?;
    if params.get("client_id").is_none() {
        return Err(GoogleError::MissingParameter("client_id"));
    }
    let client_id = client_auth::public_client_id(&headers, &params);
    let app = client_auth::find_client(&provider, &client_id, Dialect::Google)
        .await?
        .ok_or(GoogleError::ClientNotFound)?;
    let scope = params
        .get("scope")
        .ok_or(GoogleError::MissingParameter("scope"))?;
    let started = device::start(&provider, &app, scope, EXPIRES_IN_SECS, &client)
        .await
        .map_err(|e| match e {
            StartError::Disabled => GoogleError::DeviceFlowDisabled,
            StartError::InvalidScope => GoogleError::InvalidScope,
            StartError::TooMany => GoogleError::TooManyDeviceCodes,
            StartError::Store(e) => GoogleError::Unavailable(e),
        })?;
    let answer = DeviceCodeAnswer {
        device_code: started.device_code,
        user_code: started.user_code.display(),
        verification_url: format!("{}{VERIFICATION_PATH}", provider.public_url),
        expires_in: started.expires_in,
        interval: started.interval,
    };
    let mut response = Json(answer).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A device's poll with the device-code grant, by an authenticated `app`.
pub(super) async fn poll(
    provider: &Provider,
    app: &App,
    params: &Params,
) -> Result<TokenAnswer, GoogleError> {
    let device_code = params
        .get("device_code")
        .ok_or(GoogleError::MissingParameter("device_code"))?;
    match device::poll(provider, app, device_code).await? {
        Polled::Issued(answer) => Ok(answer),
        Polled::Pending => Err(GoogleError::AuthorizationPending),
        // Google's slow_down carries no interval; the device adds its own.
        Polled::SlowDown { .. } => Err(GoogleError::SlowDown),
        Polled::Expired => Err(GoogleError::ExpiredDeviceCode),
        Polled::Denied => Err(GoogleError::AccessDenied),
        Polled::Unknown => Err(GoogleError::UnknownDeviceCode),
        Polled::Disabled => Err(GoogleError::DeviceFlowDisabled),
    }
}
