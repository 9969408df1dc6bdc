//! `POST /token` in Google's dialect: the authorization_code, refresh_token and device-code
//! grants.
//! Refresh tokens do not rotate: a refresh adds an access token to the family.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use refreshd_core::{ClientSecret, Dialect, RefreshToken, TokenDigest, TokenKind};
use refreshd_store::App;

use super::error::GoogleError;
use crate::Provider;
use crate::client_auth::{self, Basic, Credentials, Refusal};
use crate::code::{self, CodeMismatch, ExchangeError};
use crate::device::GRANT_TYPE as DEVICE_CODE_GRANT;
use crate::issue::{Occasion, TokenAnswer, mint};
use crate::oidc::{IdTokenClaims, SignError, Signer, Subject};
use crate::params::{Params, ParamsError};

/// Google's token endpoint: `authorization_code`, `refresh_token` and device-code grants;
/// refresh tokens do not rotate.
#[utoipa::path(post, path = "/token", operation_id = "googleToken", tag = "Google OAuth",
    security((), ("basic" = [])),
    request_body(
        description = "Also read from the query string (the body wins). Client credentials come as HTTP Basic or as `client_id` and `client_secret`.",
        content(
            (crate::api_doc::GoogleTokenRequest = "application/x-www-form-urlencoded"),
            (crate::api_doc::GoogleTokenRequest = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "`access_token` (`ya29.`), `expires_in`, `scope` (space-separated), `token_type`, and `refresh_token` (`1//`) on a code exchange or an approved device code", body = TokenAnswer),
        (status = 400, description = "`invalid_request` (a missing parameter, an unreadable body), `unsupported_grant_type`, `invalid_grant` (also an unknown or used device code), `redirect_uri_mismatch` or `expired_token`", body = crate::api_doc::GoogleError),
        (status = 401, description = "`invalid_client`: an unknown client, a wrong secret, or the device-code grant for a client with the device flow off", body = crate::api_doc::GoogleError),
        (status = 403, description = "`slow_down` or `access_denied` (device-code grant)", body = crate::api_doc::GoogleError),
        (status = 428, description = "`authorization_pending` (device-code grant)", body = crate::api_doc::GoogleError),
        (status = 413, description = "`invalid_request`: a body over 64 KiB", body = crate::api_doc::GoogleError),
        (status = 415, description = "`invalid_request`: a body neither form nor JSON", body = crate::api_doc::GoogleError),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be used", body = crate::api_doc::GoogleError),
    ))]
pub async fn token(
    State(provider): State<Provider>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GoogleError> {
    let body = body.map_err(|r| ParamsError::from_rejection(&r))?;
    let params = Params::parse(query.as_deref(), &headers, &body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or(GoogleError::MissingParameter("grant_type"))?;
    if !matches!(
        grant_type,
        "authorization_code" | "refresh_token" | DEVICE_CODE_GRANT
    ) {
        return Err(GoogleError::UnsupportedGrantType(grant_type.to_owned()));
    }
    let app = client(&provider, &headers, &params).await?;
    let answer = match grant_type {
        "authorization_code" => exchange_code(&provider, &app, &params).await?,
        DEVICE_CODE_GRANT => {
            // As for a code: the key is opened before the device code is spent.
            let signer = signer(&provider).await?;
            let mut answer = super::device::poll(&provider, &app, &params).await?;
            add_id_token(&provider, &app, &mut answer, None, signer).await?;
            answer
        }
        _ => refresh(&provider, &app, &params).await?,
    };
    let mut response = Json(answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Client credentials from HTTP Basic or the form, as Google accepts both.
async fn client(
    provider: &Provider,
    headers: &HeaderMap,
    params: &Params,
) -> Result<App, GoogleError> {
    let credentials = match client_auth::basic(headers) {
        Basic::Present(credentials) => credentials,
        Basic::Malformed => return Err(GoogleError::ClientNotFound),
        Basic::Absent => Credentials {
            client_id: params
                .get("client_id")
                .ok_or(GoogleError::MissingParameter("client_id"))?
                .to_owned(),
            secret: ClientSecret::from_presented(params.get("client_secret").unwrap_or_default()),
        },
    };
    client_auth::authenticate(provider, &credentials, Dialect::Google)
        .await?
        .map_err(|refusal| match refusal {
            Refusal::UnknownClient => GoogleError::ClientNotFound,
            Refusal::WrongSecret => GoogleError::WrongSecret,
        })
}

async fn exchange_code(
    provider: &Provider,
    app: &App,
    params: &Params,
) -> Result<TokenAnswer, GoogleError> {
    let code = params
        .get("code")
        .ok_or(GoogleError::MissingParameter("code"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or(GoogleError::MissingParameter("redirect_uri"))?;
    let verifier = params.get("code_verifier");
    // The signing key is opened before the code is spent: a key that cannot sign answers 503
    // with the code still good, never a spent code and no tokens.
    let signer = signer(provider).await?;
    let exchanged = code::exchange(provider, app, code, Some(redirect_uri), verifier)
        .await
        .map_err(|e| match e {
            ExchangeError::UnknownCode => GoogleError::BadCode,
            ExchangeError::Mismatch(CodeMismatch::RedirectUri) => GoogleError::RedirectUriMismatch,
            ExchangeError::Mismatch(CodeMismatch::Verifier) => GoogleError::BadVerifier,
            ExchangeError::Store(e) => GoogleError::Unavailable(e),
        })?;
    let mut answer = exchanged.answer;
    answer.scope = refreshd_core::Scopes::parse(&answer.scope).to_spaced();
    add_id_token(provider, app, &mut answer, exchanged.nonce, signer).await?;
    Ok(answer)
}

/// The key that signs id_tokens now, opened; `None` for a provider without a master key
/// (tools that serve `/token` for load, not sign-in), whose `openid` grants get an error.
async fn signer(provider: &Provider) -> Result<Option<Signer>, GoogleError> {
    let Some(sealer) = provider.oidc.sealer.as_ref() else {
        return Ok(None);
    };
    // Read per request, not kept: a rotation by another instance or the CLI signs at once.
    let keys = provider.store.signing_keys().await?;
    let key = refreshd_store::rules::signing_keys::current_key(&keys, provider.clock.now())
        .ok_or(SignError::NoKey)?;
    Ok(Some(Signer::open(key, sealer)?))
}

/// With `openid` among the grant's scopes, Google adds an id_token to the answer of a code
/// exchange, an approved device code and a refresh (all but the code's without `nonce`),
/// signed by `signer` when one was opened beforehand, else by the key that signs now.
async fn add_id_token(
    provider: &Provider,
    app: &App,
    answer: &mut TokenAnswer,
    nonce: Option<String>,
    signer: Option<Signer>,
) -> Result<(), GoogleError> {
    let scopes = refreshd_core::Scopes::parse(&answer.scope);
    if !scopes.as_slice().iter().any(|s| s == "openid") {
        return Ok(());
    }
    let now = provider.clock.now();
    // The user the new token was just stored for (the token was just minted: no need to parse).
    let Some(auth) = provider
        .store
        .find_authorization(TokenDigest::of(&answer.access_token), now)
        .await?
    else {
        return Err(GoogleError::ExpiredOrRevoked);
    };
    let signer = match signer {
        Some(signer) => signer,
        None => self::signer(provider).await?.ok_or(SignError::NoKey)?,
    };
    let claims = IdTokenClaims::new(
        Subject {
            issuer: &provider.oidc.issuer,
            client_id: app.client_id.as_str(),
            user: &auth.user,
            scopes: &scopes,
            picture: provider.avatar_url(&auth.user.login),
            access_token: &answer.access_token,
            nonce,
        },
        now,
    );
    answer.id_token = Some(signer.sign(&claims)?);
    Ok(())
}

async fn refresh(
    provider: &Provider,
    app: &App,
    params: &Params,
) -> Result<TokenAnswer, GoogleError> {
    let count = |outcome| crate::grants::count(Dialect::Google, "refresh_token", outcome);
    let raw = params
        .get("refresh_token")
        .ok_or(GoogleError::MissingParameter("refresh_token"))?;
    let Some(presented) = RefreshToken::parse(raw)
        .ok()
        .filter(|t| t.kind() == TokenKind::GoogleRefresh)
    else {
        count("refused");
        return Err(GoogleError::ExpiredOrRevoked);
    };
    let now = provider.clock.now();
    let minted = mint(app, Occasion::Refresh, "", &provider.lifetimes, now);
    let Some(grant) = provider
        .store
        .extend_family(presented.digest(), app.id, minted.pair.access, now)
        .await
        .inspect_err(|_| count("failed"))?
    else {
        count("refused");
        return Err(GoogleError::ExpiredOrRevoked);
    };
    // Google's refresh tokens do not rotate: the family lives on with a new access token.
    count("extended");
    let mut answer = minted.answer;
    answer.scope = grant.scopes.to_spaced();
    // No code is spent here: a refresh that cannot sign may simply be retried.
    add_id_token(provider, app, &mut answer, None, None).await?;
    Ok(answer)
}
