//! The connections API: refreshd holds a user's GitHub or Google grant as a connection, and
//! backends ask it for a working access token by the connection's id. Tokens are kept only
//! sealed (`TokenSealer`, bound to the id); no answer carries a refresh token.

mod claim;
mod fresh;
pub mod refresher;
mod revoke;

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderName;
use axum::http::header::CACHE_CONTROL;
use refreshd_core::{ConnectionId, ConnectionStatus, Upstream};
use refreshd_store::{Connection, ConnectionFilter, NewConnection};

use crate::auth::Backend;
use crate::error::BrokerError;
use crate::state::Broker;
use crate::upstream::Refreshed;
use crate::wire::{
    Body, ConnectionDeleted, ConnectionPage, ConnectionSaved, ConnectionShown, ConnectionView,
    CreateConnection, TokenReply,
};
use fresh::{Wanted, not_found, upstream_of};

/// How long the token must stay valid unless the caller says (`min_valid_secs`).
const DEFAULT_MIN_VALID_SECS: i64 = 60;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(query: Params) -> Result<HashMap<String, String>, BrokerError> {
    query
        .map(|Query(params)| params)
        .map_err(|_| BrokerError::InvalidRequest("the query string could not be read".into()))
}

fn connection_id(path: Result<Path<String>, PathRejection>) -> Result<ConnectionId, BrokerError> {
    path.ok()
        .and_then(|Path(raw)| ConnectionId::parse(&raw))
        .ok_or_else(|| {
            BrokerError::InvalidRequest(
                "a connection id is 1-128 characters of A-Z a-z 0-9 - _ . ~".into(),
            )
        })
}

/// A query parameter read by `parse`, else a 400 naming it.
fn param<T>(
    params: &HashMap<String, String>,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, BrokerError> {
    params
        .get(name)
        .map(|raw| {
            parse(raw)
                .ok_or_else(|| BrokerError::InvalidRequest(format!("\"{name}\" must be {what}")))
        })
        .transpose()
}

/// Keeps tokens just obtained from `provider` (a code exchanged, a refresh token imported, a
/// login) as connection `id` (default a new `conn_…`), replacing any connection with that id:
/// sealed, with its first refresh scheduled. An access token that expires with no refresh token
/// to renew it is refused (400): such a connection could not be kept fresh. The one way a
/// connection is made.
pub(crate) async fn keep(
    broker: &Broker,
    provider: Upstream,
    id: Option<ConnectionId>,
    metadata: Option<String>,
    obtained: &Refreshed,
) -> Result<Connection, BrokerError> {
    if obtained.refresh_token.is_none() && obtained.expires_at.is_some() {
        return Err(BrokerError::InvalidRequest(
            "the upstream gave no refresh token, so the connection could not be kept fresh \
             past its access token's expiry (from Google, ask with access_type=offline and \
             prompt=consent)"
                .into(),
        ));
    }
    let id = id.unwrap_or_else(ConnectionId::generate);
    let tokens = fresh::sealed_tokens(broker, &id, obtained, None);
    let now = broker.0.clock.now();
    let next_refresh_at = broker.0.settings.refresh_schedule.next_refresh_at(
        &tokens,
        now,
        refreshd_core::random::fraction(),
    );
    let new = NewConnection {
        id,
        upstream: provider,
        tokens,
        next_refresh_at,
        metadata,
    };
    Ok(broker.0.store.put_connection(new, now).await?)
}

/// Create a connection (or replace the one with its id) from an authorization code, or by
/// importing a refresh token, which is refreshed once at once to prove it works.
#[utoipa::path(post, path = "/connections", operation_id = "connectionCreate", tag = "Connections", security(("bearer" = [])),
    request_body = CreateConnection,
    responses((status = 200, description = "Connected", body = ConnectionSaved), crate::error::BrokerErrors, crate::error::KeyOnlyErrors))]
pub async fn create(
    State(broker): State<Broker>,
    Backend(caller): Backend,
    Body(request): Body<CreateConnection>,
) -> Result<Json<ConnectionSaved>, BrokerError> {
    let upstream = upstream_of(request.provider);
    let obtained = match (&request.code, &request.refresh_token) {
        (Some(code), _) => {
            let configured = match request.provider {
                Upstream::Google => broker.0.settings.google.redirect_uri.as_deref(),
                Upstream::Github => None,
            };
            let redirect_uri = request.redirect_uri.as_deref().or(configured);
            crate::login::exchange(
                &broker,
                upstream,
                code,
                redirect_uri,
                request.code_verifier.as_deref(),
            )
            .await?
        }
        (None, Some(refresh_token)) => {
            let mut refreshed =
                crate::refresh::refresh_through(&broker, &caller, upstream, refresh_token).await?;
            // Google keeps the refresh token it was sent.
            if refreshed.refresh_token.is_none() {
                refreshed.refresh_token = Some(refresh_token.clone());
            }
            refreshed
        }
        (None, None) => unreachable!("the request has a code or a refresh token"),
    };
    let connection = keep(
        &broker,
        request.provider,
        request.connection_id,
        request.metadata,
        &obtained,
    )
    .await?;
    Ok(Json(ConnectionSaved::from(&connection)))
}

/// A working access token: the stored one if it stays valid `min_valid_secs` longer (default
/// 60), else one refreshed first. Concurrent calls for one connection make one upstream call.
#[utoipa::path(get, path = "/connections/{id}/token", operation_id = "connectionToken", tag = "Connections", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The connection's id"),
        ("min_valid_secs" = Option<i64>, Query, description = "How long the token must stay valid, in seconds (default 60), at most half the life a token is issued with: asking more does not refresh on every call"),
        ("force_refresh" = Option<bool>, Query, description = "Refresh even if the stored token would do, unless a refresh landed in the last 2 seconds (callers forcing together share one)"),
    ),
    responses((status = 200, description = "A working access token", body = TokenReply,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        crate::error::ConnectionErrors, crate::error::BrokerErrors, crate::error::KeyOnlyErrors))]
pub async fn token(
    State(broker): State<Broker>,
    _: Backend,
    path: Result<Path<String>, PathRejection>,
    query: Params,
) -> Result<([(HeaderName, &'static str); 1], Json<TokenReply>), BrokerError> {
    let id = connection_id(path)?;
    let params = params(query)?;
    let min_valid_secs = param(
        &params,
        "min_valid_secs",
        |raw| raw.parse::<i64>().ok().filter(|s| (0..=86_400).contains(s)),
        "a whole number of seconds from 0 to 86400",
    )?
    .unwrap_or(DEFAULT_MIN_VALID_SECS);
    let force = param(
        &params,
        "force_refresh",
        |raw| raw.parse::<bool>().ok(),
        "true or false",
    )?
    .unwrap_or(false);
    let wanted = Wanted {
        min_valid_secs,
        force,
    };
    let (_, answer) = fresh::token(&broker, &id, wanted).await?;
    let reply = TokenReply {
        access_token: answer.token,
        connection_id: id.to_string(),
        expires_at: answer.expires_at,
        scope: answer.scope.unwrap_or_default(),
        success: true,
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(reply)))
}

/// Refresh a connection now, whatever its token's expiry (unless it is broken or backing off).
#[utoipa::path(post, path = "/connections/{id}/refresh", operation_id = "connectionRefresh", tag = "Connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, description = "Refreshed", body = ConnectionSaved),
        crate::error::ConnectionErrors, crate::error::BrokerErrors, crate::error::KeyOnlyErrors))]
pub async fn refresh(
    State(broker): State<Broker>,
    _: Backend,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConnectionSaved>, BrokerError> {
    let id = connection_id(path)?;
    let connection = refresh_connection(&broker, &id).await?;
    Ok(Json(ConnectionSaved::from(&connection)))
}

/// Refreshes connection `id` now, as `POST /connections/{id}/refresh` does: through its
/// claim, so never racing another instance's refresh of it; a refresh that landed in the last
/// 2 s serves. The connection as saved. The API and `refreshd connection refresh` call it.
pub async fn refresh_connection(
    broker: &Broker,
    id: &ConnectionId,
) -> Result<Connection, BrokerError> {
    let wanted = Wanted {
        min_valid_secs: 0,
        force: true,
    };
    fresh::token(broker, id, wanted).await?;
    broker
        .0
        .store
        .find_connection(id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// A connection's state; never a token.
#[utoipa::path(get, path = "/connections/{id}", operation_id = "connectionShow", tag = "Connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, description = "The connection", body = ConnectionShown),
        crate::error::ConnectionErrors, crate::error::BrokerErrors, crate::error::KeyOnlyErrors))]
pub async fn show(
    State(broker): State<Broker>,
    _: Backend,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConnectionShown>, BrokerError> {
    let id = connection_id(path)?;
    let connection = broker
        .0
        .store
        .find_connection(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(ConnectionShown {
        connection: ConnectionView::from(&connection),
        success: true,
    }))
}

/// Connections in id order, a page at a time: `cursor` is the previous page's `nextCursor`.
#[utoipa::path(get, path = "/connections", operation_id = "connectionList", tag = "Connections", security(("bearer" = [])),
    params(
        ("provider" = Option<String>, Query, description = "`github` or `google`"),
        ("status" = Option<String>, Query, description = "`live`, `broken` or `backing_off`"),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`"),
        ("limit" = Option<i64>, Query, description = "At most this many, 1 to 200 (default 50)"),
    ),
    responses((status = 200, description = "One page", body = ConnectionPage), crate::error::BrokerErrors, crate::error::KeyOnlyErrors))]
pub async fn list(
    State(broker): State<Broker>,
    _: Backend,
    query: Params,
) -> Result<Json<ConnectionPage>, BrokerError> {
    let params = params(query)?;
    let limit = param(
        &params,
        "limit",
        |raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
        },
        "a whole number from 1 to 200",
    )?
    .unwrap_or(DEFAULT_PAGE);
    let filter = ConnectionFilter {
        upstream: param(&params, "provider", Upstream::parse, "github or google")?,
        status: param(
            &params,
            "status",
            ConnectionStatus::parse,
            "live, broken or backing_off",
        )?,
        after: param(&params, "cursor", ConnectionId::parse, "a connection id")?,
        limit,
    };
    let connections = broker.0.store.list_connections(&filter).await?;
    let next_cursor = (connections.len() as i64 == limit)
        .then(|| connections.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(Json(ConnectionPage {
        connections: connections.iter().map(ConnectionView::from).collect(),
        next_cursor,
        success: true,
    }))
}

/// Revoke the connection's grant upstream, then delete it here, even if the upstream did
/// not revoke it (`upstreamRevoked: false` and `upstreamError` say so).
#[utoipa::path(delete, path = "/connections/{id}", operation_id = "connectionDelete", tag = "Connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "The connection's id")),
    responses((status = 200, description = "Deleted", body = ConnectionDeleted),
        crate::error::ConnectionErrors, crate::error::BrokerErrors, crate::error::KeyOnlyErrors))]
pub async fn delete(
    State(broker): State<Broker>,
    _: Backend,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConnectionDeleted>, BrokerError> {
    let id = connection_id(path)?;
    let revoked = delete_connection(&broker, &id).await?;
    Ok(Json(ConnectionDeleted {
        success: true,
        upstream_revoked: revoked.is_ok(),
        upstream_error: revoked.err(),
    }))
}

/// Revokes connection `id`'s grant upstream, then deletes it here, even if the upstream did
/// not revoke it: `Ok(Err(why))` says why not (never with a token). The delete is made at the
/// version whose grant was revoked: a connection replaced or refreshed meanwhile has its own
/// grant revoked in turn before it goes (three tries, then it goes as it is). The API and
/// `refreshd connection delete` call it.
pub async fn delete_connection(
    broker: &Broker,
    id: &ConnectionId,
) -> Result<Result<(), String>, BrokerError> {
    const TRIES: usize = 3;
    let store = broker.0.store.as_ref();
    for attempt in 1..=TRIES {
        let connection = store
            .find_connection(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let revoked = revoke::revoke(broker, &connection).await;
        if let Err(reason) = &revoked {
            tracing::warn!(%reason, "the upstream did not revoke a deleted connection's grant");
        }
        let event = crate::webhooks::event(
            broker,
            refreshd_store::WebhookEventKind::Deleted,
            &connection,
            "deleted",
            serde_json::json!({
                "upstreamRevoked": revoked.is_ok(),
                "upstreamError": revoked.as_ref().err(),
            }),
            broker.0.clock.now(),
        );
        let at_version = (attempt < TRIES).then_some(connection.version);
        if store
            .delete_connection(id, at_version, event)
            .await?
            .is_some()
        {
            return Ok(revoked);
        }
    }
    Err(not_found(id))
}
