//! The login endpoints: `POST /auth/github` {code}, `POST /auth/google/exchange` {code},
//! `POST /auth/google` {token}. The code endpoints may keep what they obtained as a connection
//! (`connection_id`). Logins answer Flashback's `authState` with a refreshd session
//! token (stored only as a digest, expiring) the caller may use as its Bearer afterwards.

use axum::Json;
use axum::extract::State;
use refreshd_core::{ConnectionId, TokenDigest};
use refreshd_store::Session;
use serde_json::Value;

use crate::auth::{Caller, SESSION_PREFIX};
use crate::error::BrokerError;
use crate::state::Broker;
use crate::upstream::{Refreshed, Upstream};
use crate::wire::{
    AuthUser, Body, CodeRequest, Exchanged, GoogleExchangeRequest, GoogleLoginRequest, LoggedIn,
};

/// Who signed in, as the upstream describes them.
struct Profile {
    subject: String,
    user: AuthUser,
}

/// A profile field as the answer carries it: a string, else `null`.
fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Keeps a login's tokens as the connection the request named, if it named one (as `POST
/// /connections` keeps them); its id.
async fn keep_if_asked(
    broker: &Broker,
    provider: refreshd_core::Upstream,
    connection_id: Option<ConnectionId>,
    metadata: Option<String>,
    tokens: &Refreshed,
) -> Result<Option<ConnectionId>, BrokerError> {
    let Some(id) = connection_id else {
        return Ok(None);
    };
    let kept = crate::connections::keep(broker, provider, Some(id), metadata, tokens).await?;
    Ok(Some(kept.id))
}

/// Starts a session and answers Flashback's login shape (naming the connection the tokens
/// were kept as, if they were).
async fn signed_in(
    broker: &Broker,
    provider: &'static str,
    profile: Profile,
    tokens: Refreshed,
    kept: Option<ConnectionId>,
) -> Result<Json<LoggedIn>, BrokerError> {
    let session = format!("{SESSION_PREFIX}{}", refreshd_core::random::base62(40));
    let now = broker.0.clock.now();
    let record = Session {
        provider: provider.to_owned(),
        subject: profile.subject,
        expires_at: now.plus_secs(broker.0.settings.session_secs),
    };
    broker
        .0
        .store
        .create_session(TokenDigest::of(&session), record, now)
        .await?;
    let answer = LoggedIn::new(profile.user, session, provider, tokens);
    Ok(Json(match kept {
        Some(id) => answer.kept_as(&id),
        None => answer,
    }))
}

/// Exchanges an authorization code (with its PKCE verifier, if it has one) at an upstream's
/// token endpoint.
pub(crate) async fn exchange(
    broker: &Broker,
    upstream: Upstream,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<Refreshed, BrokerError> {
    let client = broker.upstream(upstream)?;
    let settings = &broker.0.settings;
    let (url, mut form) = match upstream {
        Upstream::Github => (&settings.github.token_url, vec![("code", code)]),
        Upstream::Google => (
            &settings.google.token_url,
            vec![("grant_type", "authorization_code"), ("code", code)],
        ),
    };
    if let Some(redirect_uri) = redirect_uri {
        form.push(("redirect_uri", redirect_uri));
    }
    if let Some(code_verifier) = code_verifier {
        form.push(("code_verifier", code_verifier));
    }
    let (status, body) = client.post_form(url, &form).await?;
    client.read_token_answer(status, &body, broker.0.clock.now().secs())
}

/// The upstream's user for an access token; a refused token is `invalid_grant`.
async fn fetch_user(
    broker: &Broker,
    upstream: Upstream,
    url: &str,
    token: &str,
) -> Result<Value, BrokerError> {
    let (status, body) = broker.upstream(upstream)?.get_json(url, token).await?;
    match status.as_u16() {
        200 => Ok(body),
        401 | 403 => Err(BrokerError::InvalidGrant {
            upstream_error: "invalid_token".into(),
            message: format!("{} refused the access token", upstream.name()),
        }),
        other => Err(BrokerError::Upstream(format!(
            "{} answered HTTP {other} for the user",
            upstream.name()
        ))),
    }
}

/// Log in with a GitHub authorization code; with `connection_id`, also keep the grant as that
/// connection.
#[utoipa::path(post, path = "/auth/github", operation_id = "brokerGithubLogin", tag = "Broker", security(("bearer" = [])),
    request_body = CodeRequest,
    responses((status = 200, description = "Signed in", body = LoggedIn), crate::error::BrokerErrors,
        crate::error::KeyOnlyErrors))]
pub async fn github(
    State(broker): State<Broker>,
    caller: Caller,
    Body(request): Body<CodeRequest>,
) -> Result<Json<LoggedIn>, BrokerError> {
    if request.connection_id.is_some() {
        caller.backend_only()?;
    }
    let tokens = exchange(&broker, Upstream::Github, &request.code, None, None).await?;
    let url = format!(
        "{}/user",
        broker.0.settings.github.api_url.trim_end_matches('/')
    );
    let user = fetch_user(&broker, Upstream::Github, &url, &tokens.token).await?;
    let subject = user["id"]
        .as_i64()
        .ok_or_else(|| BrokerError::Upstream("GitHub's user has no id".into()))?;
    let name = if user["name"].is_null() {
        &user["login"]
    } else {
        &user["name"]
    };
    let profile = Profile {
        subject: subject.to_string(),
        user: AuthUser {
            email: text(&user["email"]),
            image_url: text(&user["avatar_url"]),
            name: text(name),
        },
    };
    let kept = keep_if_asked(
        &broker,
        refreshd_core::Upstream::Github,
        request.connection_id,
        request.metadata,
        &tokens,
    )
    .await?;
    signed_in(&broker, "GITHUB", profile, tokens, kept).await
}

/// Exchange a Google authorization code; with `connection_id`, also keep the grant as that
/// connection.
#[utoipa::path(post, path = "/auth/google/exchange", operation_id = "brokerGoogleExchange", tag = "Broker", security(("bearer" = [])),
    request_body = GoogleExchangeRequest,
    responses((status = 200, description = "Exchanged", body = Exchanged), crate::error::BrokerErrors,
        crate::error::KeyOnlyErrors))]
pub async fn google_exchange(
    State(broker): State<Broker>,
    caller: Caller,
    Body(request): Body<GoogleExchangeRequest>,
) -> Result<Json<Exchanged>, BrokerError> {
    if request.connection_id.is_some() {
        caller.backend_only()?;
    }
    let configured = broker.0.settings.google.redirect_uri.as_deref();
    let redirect_uri = request
        .redirect_uri
        .as_deref()
        .or(configured)
        .ok_or_else(|| {
            BrokerError::InvalidRequest(
                "\"redirect_uri\" is required (or configure google.redirect_uri)".into(),
            )
        })?;
    let tokens = exchange(
        &broker,
        Upstream::Google,
        &request.code,
        Some(redirect_uri),
        None,
    )
    .await?;
    let kept = keep_if_asked(
        &broker,
        refreshd_core::Upstream::Google,
        request.connection_id,
        request.metadata,
        &tokens,
    )
    .await?;
    let answer = Exchanged::from(tokens);
    Ok(Json(match kept {
        Some(id) => answer.kept_as(&id),
        None => answer,
    }))
}

/// Log in with a Google access token (verified through Google's userinfo endpoint).
#[utoipa::path(post, path = "/auth/google", operation_id = "brokerGoogleLogin", tag = "Broker", security(("bearer" = [])),
    request_body = GoogleLoginRequest,
    responses((status = 200, description = "Signed in", body = LoggedIn), crate::error::BrokerErrors))]
pub async fn google(
    State(broker): State<Broker>,
    _caller: Caller,
    Body(request): Body<GoogleLoginRequest>,
) -> Result<Json<LoggedIn>, BrokerError> {
    let token = request.token;
    let url = broker.0.settings.google.userinfo_url.clone();
    let user = fetch_user(&broker, Upstream::Google, &url, &token).await?;
    let subject = user["sub"].as_str().filter(|s| !s.is_empty());
    let subject =
        subject.ok_or_else(|| BrokerError::Upstream("Google's userinfo has no sub".into()))?;
    let profile = Profile {
        subject: subject.to_owned(),
        user: AuthUser {
            email: text(&user["email"]),
            image_url: text(&user["picture"]),
            name: text(&user["name"]),
        },
    };
    let tokens = Refreshed {
        token,
        refresh_token: None,
        expires_at: None,
        scope: None,
        refresh_expires_at: None,
    };
    signed_in(&broker, "GOOGLE", profile, tokens, None).await
}
