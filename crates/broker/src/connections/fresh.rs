//! A connection's working access token: the stored one while it stays valid long enough,
//! else one refresh, of which concurrent callers share one.
//!
//! On this instance callers of one connection join one flight (`crate::flight`); across
//! instances the flight claims the connection (`Connections::claim_connection`, kept by
//! `claim::Kept`) before it calls the upstream, and a flight that finds the claim held reads
//! until it ends, then takes what the holder saved. The refresh is saved against the version read, so two writers never both
//! win. A refresh whose outcome is unknown is recorded as backing off past the broker's full
//! hold, so the refresh token is not sent again blindly.

use std::time::Duration;

use refreshd_core::{ConnectionId, ConnectionStatus, Timestamp, TokenDigest, TokenRole, Upstream};
use refreshd_store::rules::connections::{self as rules, Backoff, FailedAttempt, FailureKind};
use refreshd_store::rules::webhooks as webhook_rules;
use refreshd_store::{
    ClaimAttempt, Connection, ConnectionTokens, Failure, StoreError, WebhookEvent, WebhookEventKind,
};
use serde_json::json;
use tokio::time::Instant;

use super::claim;
use crate::error::BrokerError;
use crate::lease;
use crate::refresh::call_upstream;
use crate::state::Broker;
use crate::upstream::{self, Refreshed};
use crate::webhooks;

/// How often a flight that finds the connection claimed elsewhere reads it again.
const CLAIM_POLL: Duration = Duration::from_millis(25);

/// How long a failed save of a refresh is tried again for: the upstream has rotated, and the
/// old refresh token in the row no longer works.
const SAVE_RETRIES_MS: [u64; 4] = [250, 500, 1000, 2000];

/// A forced refresh is satisfied by one that landed this recently, so callers forcing
/// together (or again and again) cause one upstream refresh, not one each.
pub const FORCE_WINDOW_SECS: i64 = 2;

/// What the caller asks for.
#[derive(Clone, Copy)]
pub struct Wanted {
    /// The token must stay valid this much longer; at most half the life a token is issued
    /// with (`stored`), so asking more than a fresh token gives does not refresh every call.
    pub min_valid_secs: i64,
    /// Refresh even if the stored token would do, unless a refresh landed within
    /// `FORCE_WINDOW_SECS`.
    pub force: bool,
}

/// The broker's upstream for a connection's.
pub fn upstream_of(upstream: Upstream) -> upstream::Upstream {
    match upstream {
        Upstream::Github => upstream::Upstream::Github,
        Upstream::Google => upstream::Upstream::Google,
    }
}

pub fn not_found(id: &ConnectionId) -> BrokerError {
    BrokerError::NotFound(format!("there is no connection {id:?}", id = id.as_str()))
}

/// A working access token of connection `id`, refreshed first if need be.
pub async fn token(
    broker: &Broker,
    id: &ConnectionId,
    wanted: Wanted,
) -> Result<(Connection, Refreshed), BrokerError> {
    let store = broker.0.store.as_ref();
    let connection = store
        .find_connection(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let now = broker.0.clock.now();
    if let Some(answer) = usable(broker, &connection, now, wanted)? {
        return Ok((connection, answer));
    }
    let key = TokenDigest::of(&format!("connection\0{id}"));
    let (for_call, id_for_call) = (broker.clone(), id.clone());
    let seen = connection.version;
    let provider = upstream_of(connection.upstream).name();
    let call = move || async move {
        refresh_claimed(&for_call, &id_for_call, provider, seen, wanted).await
    };
    let nothing = |_: Vec<TokenDigest>, _: Refreshed| async {};
    let answer = broker
        .0
        .flights
        .join(provider, key, key, call, nothing, || async {})
        .await?;
    Ok((connection, answer))
}

/// The stored token if it serves `wanted` at `now`; the error that stops a refresh (broken,
/// backing off with the token expired); `None` when a refresh is in order.
fn usable(
    broker: &Broker,
    connection: &Connection,
    now: Timestamp,
    wanted: Wanted,
) -> Result<Option<Refreshed>, BrokerError> {
    if connection.status == ConnectionStatus::Broken {
        return Err(broken(connection));
    }
    let waiting = connection.retry_after.filter(|at| *at > now);
    if let Some(until) = waiting {
        return match stored(broker, connection, now, 0) {
            Some(answer) => Ok(Some(answer)),
            None => Err(backing_off(connection, until, now)),
        };
    }
    let just_refreshed = connection.last_refreshed_at >= now.plus_secs(-FORCE_WINDOW_SECS);
    if wanted.force && !just_refreshed {
        return Ok(None);
    }
    Ok(stored(broker, connection, now, wanted.min_valid_secs))
}

/// The stored access token if it stays valid `min_valid_secs` past `now`.
fn stored(
    broker: &Broker,
    connection: &Connection,
    now: Timestamp,
    min_valid_secs: i64,
) -> Option<Refreshed> {
    let tokens = &connection.tokens;
    let lasts = tokens.access_expires_at.is_none_or(|at| {
        let issued_for = at.secs() - connection.last_refreshed_at.secs();
        at > now.plus_secs(min_valid_secs.min(issued_for / 2))
    });
    if !lasts {
        return None;
    }
    let token = broker
        .0
        .sealer
        .unseal(&connection.id, TokenRole::Access, &tokens.access);
    if token.is_none() {
        tracing::error!(
            connection = connection.id.as_str(),
            "a connection's access token does not open with this instance's master key"
        );
    }
    let token = token?;
    Some(Refreshed {
        token,
        refresh_token: None,
        expires_at: tokens.access_expires_at.map(|at| at.secs() * 1000),
        scope: Some(crate::wire::scope_text(connection)),
        refresh_expires_at: None,
    })
}

/// How a refusal's text joins the upstream's code and its description ("code: description").
const REFUSAL_SEPARATOR: &str = ": ";

/// The upstream's code in a refusal's text, as `failure` writes it.
fn refusal_code(error: &str) -> &str {
    error.split(REFUSAL_SEPARATOR).next().unwrap_or(error)
}

fn broken(connection: &Connection) -> BrokerError {
    let last = connection.last_error.as_deref().unwrap_or("refused");
    let upstream_error = refusal_code(last).to_owned();
    BrokerError::ConnectionBroken {
        upstream_error,
        message: format!(
            "the upstream refused connection {:?}'s grant ({last}); replace the connection",
            connection.id.as_str()
        ),
    }
}

fn backing_off(connection: &Connection, until: Timestamp, now: Timestamp) -> BrokerError {
    let last = connection
        .last_error
        .as_deref()
        .unwrap_or("a failed refresh");
    BrokerError::BackingOff {
        retry_after_secs: (until.secs() - now.secs()).max(1),
        message: format!(
            "connection {:?} could not be refreshed ({last}) and its access token has expired; \
             the next attempt waits",
            connection.id.as_str()
        ),
    }
}

/// The flight's work: claim the connection, decide again on what it now is, refresh, save.
async fn refresh_claimed(
    broker: &Broker,
    id: &ConnectionId,
    provider: &'static str,
    seen: i64,
    wanted: Wanted,
) -> Result<Refreshed, BrokerError> {
    let store = broker.0.store.as_ref();
    let hold = lease::hold_secs(broker) as i64;
    let holder = refreshd_core::random::bytes::<16>();
    let give_up = Instant::now() + Duration::from_secs(2 * hold as u64);
    let connection = loop {
        let now = broker.0.clock.now();
        match store
            .claim_connection(id, holder, claim::term_from(now), now)
            .await?
        {
            ClaimAttempt::Claimed(connection) => break *connection,
            ClaimAttempt::Missing => return Err(not_found(id)),
            ClaimAttempt::Held { .. } => {}
        }
        // Another instance refreshes it: read (no writes) until its claim ends.
        loop {
            if Instant::now() >= give_up {
                return Err(BrokerError::UpstreamTimeout(provider));
            }
            tokio::time::sleep(CLAIM_POLL).await;
            let now = broker.0.clock.now();
            let Some(connection) = store.find_connection(id).await? else {
                return Err(not_found(id));
            };
            if connection.claimed_until.is_none_or(|at| at <= now) {
                if connection.version != seen {
                    // What the holder saved serves, forced or not.
                    let wanted = Wanted {
                        force: false,
                        ..wanted
                    };
                    if let Some(answer) = usable(broker, &connection, now, wanted)? {
                        return Ok(answer);
                    }
                }
                break;
            }
        }
    };
    let _kept = claim::Kept::start(broker, id, holder);
    let now = broker.0.clock.now();
    // Decided again on the connection as claimed: it may have been refreshed since it was read.
    let wanted = Wanted {
        force: wanted.force && connection.version == seen,
        ..wanted
    };
    let decided = usable(broker, &connection, now, wanted);
    if !matches!(decided, Ok(None)) {
        release(broker, id, holder).await;
        return decided.map(|answer| answer.expect("not None"));
    }
    match refresh_held(broker, &connection, holder).await? {
        Attempt::Refreshed(answer) | Attempt::Unsaved(answer) => Ok(answer),
        Attempt::NothingToRefreshWith => {
            // A GitHub token that never expires: the token while valid.
            if let Some(answer) = stored(broker, &connection, now, 0) {
                return Ok(answer);
            }
            Err(BrokerError::ConnectionBroken {
                upstream_error: "no_refresh_token".into(),
                message: format!(
                    "connection {:?} has no refresh token and its access token has expired; \
                     replace the connection",
                    id.as_str()
                ),
            })
        }
        Attempt::Failed { error, after: None } => Err(error),
        Attempt::Failed {
            error,
            after: Some(failed),
        } => {
            let now = broker.0.clock.now();
            let anyway = Wanted {
                min_valid_secs: 0,
                force: false,
            };
            match usable(broker, &failed, now, anyway)? {
                Some(answer) => Ok(answer),
                None => Err(error),
            }
        }
    }
}

/// How a refresh of a claimed connection ended.
pub enum Attempt {
    /// The upstream refreshed and the new tokens were saved (or the connection was replaced
    /// meanwhile): the answer.
    Refreshed(Refreshed),
    /// The upstream refreshed but the new tokens could not be saved: the answer, its claim held
    /// for the full hold.
    Unsaved(Refreshed),
    /// The connection has no refresh token; the claim was released.
    NothingToRefreshWith,
    /// The refresh failed; `after` is the connection as the recorded failure left it (broken,
    /// or backing off), `None` if nothing was recorded: the connection was replaced or deleted
    /// meanwhile, or this instance has no client for its upstream (the claim was released
    /// and another instance may refresh it).
    Failed {
        error: BrokerError,
        after: Option<Box<Connection>>,
    },
}

/// Refreshes `connection`, claimed by `holder`, at the upstream and saves the outcome against
/// the version read: the new tokens, or the failure as `rules::connections` classifies it.
/// The one refresh of a connection both the API and the refresher run.
pub async fn refresh_held(
    broker: &Broker,
    connection: &Connection,
    holder: [u8; 16],
) -> Result<Attempt, BrokerError> {
    let id = &connection.id;
    let Some(sealed) = connection.tokens.refresh.as_ref() else {
        release(broker, id, holder).await;
        return Ok(Attempt::NothingToRefreshWith);
    };
    let Some(refresh_token) = broker.0.sealer.unseal(id, TokenRole::Refresh, sealed) else {
        // Another master key sealed it (a lost key file, a restored backup, an instance
        // started with the wrong key): backed off like a passing failure, so it neither
        // takes every round of the refresher nor is written off.
        tracing::error!(
            connection = id.as_str(),
            "a connection's refresh token does not open with this instance's master key"
        );
        let error = BrokerError::Unavailable(StoreError::Corrupt(
            "a connection's tokens do not open with this instance's master key".into(),
        ));
        return record(broker, connection, holder, error).await;
    };
    let upstream = upstream_of(connection.upstream);
    match call_upstream(broker, upstream, &refresh_token).await {
        Ok(refreshed) => save(broker, connection, refreshed, holder).await,
        Err(error @ BrokerError::NotConfigured(_)) => {
            // Nothing was sent: left to an instance that has a client for it.
            release(broker, id, holder).await;
            Ok(Attempt::Failed { error, after: None })
        }
        Err(error) => record(broker, connection, holder, error).await,
    }
}

/// Records a failed refresh of `connection` at the version read.
async fn record(
    broker: &Broker,
    connection: &Connection,
    holder: [u8; 16],
    error: BrokerError,
) -> Result<Attempt, BrokerError> {
    let now = broker.0.clock.now();
    let failure = failure(broker, connection, &error, now);
    let event = failure_event(broker, connection, &failure, now);
    let recorded = broker
        .0
        .store
        .record_failure(&connection.id, connection.version, failure, now, event)
        .await;
    let after = match recorded {
        Ok(after) => after,
        Err(e) => {
            if error.outcome_unknown() {
                // Not recorded: the claim holds the refresh token back instead, for as long
                // as the database lets it.
                hold(broker, connection, holder).await;
            }
            return Err(e.into());
        }
    };
    if after.is_none() {
        // Replaced or deleted meanwhile: nothing of ours to record.
        release(broker, &connection.id, holder).await;
    }
    Ok(Attempt::Failed {
        error,
        after: after.map(Box::new),
    })
}

/// Seals and saves a refresh's tokens at the version claimed, with the answer the callers get.
async fn save(
    broker: &Broker,
    connection: &Connection,
    refreshed: Refreshed,
    holder: [u8; 16],
) -> Result<Attempt, BrokerError> {
    let now = broker.0.clock.now();
    let tokens = sealed_tokens(broker, &connection.id, &refreshed, Some(&connection.tokens));
    let next = broker.0.settings.refresh_schedule.next_refresh_at(
        &tokens,
        now,
        refreshd_core::random::fraction(),
    );
    let event = save_event(broker, connection, &tokens, now);
    let mut retries = SAVE_RETRIES_MS.into_iter();
    let saved = loop {
        let saved = broker
            .0
            .store
            .save_refresh(
                &connection.id,
                connection.version,
                tokens.clone(),
                next,
                now,
                event.clone(),
            )
            .await;
        match (saved, retries.next()) {
            (Ok(saved), _) => break saved,
            (Err(e), Some(ms)) => {
                tracing::warn!(error = %e, "could not save a connection's refresh; trying again");
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            (Err(e), None) => {
                // The upstream has refreshed: the callers get the new token. The claim is
                // kept for the full hold if the database lets it, so no instance sends the
                // old refresh token again meanwhile.
                tracing::error!(error = %e, "a connection's refresh could not be saved");
                hold(broker, connection, holder).await;
                return Ok(Attempt::Unsaved(Refreshed {
                    refresh_token: None,
                    ..refreshed
                }));
            }
        }
    };
    match saved {
        Some(saved) => Ok(Attempt::Refreshed(Refreshed {
            refresh_token: None,
            scope: Some(crate::wire::scope_text(&saved)),
            ..refreshed
        })),
        None => {
            release(broker, &connection.id, holder).await;
            // Deleted meanwhile: its tokens are nobody's to hand out.
            if broker
                .0
                .store
                .find_connection(&connection.id)
                .await?
                .is_none()
            {
                return Err(not_found(&connection.id));
            }
            tracing::warn!("a connection was replaced while it was refreshed");
            Ok(Attempt::Refreshed(Refreshed {
                refresh_token: None,
                ..refreshed
            }))
        }
    }
}

/// The webhook event a refresh saved on `connection` (as read, at the version saved against)
/// announces: `connection.recovered` if it was failing, else `connection.refreshed`.
fn save_event(
    broker: &Broker,
    connection: &Connection,
    tokens: &ConnectionTokens,
    now: Timestamp,
) -> Option<WebhookEvent> {
    let kind = webhook_rules::on_save(connection.status);
    let mut data = json!({ "expiresAt": webhooks::millis(tokens.access_expires_at) });
    if kind == WebhookEventKind::Recovered {
        data["previousStatus"] = json!(connection.status.as_str());
        data["failureCount"] = json!(connection.failure_count);
    }
    webhooks::event(broker, kind, connection, "live", data, now)
}

/// The webhook event a failure recorded on `connection` (as read) announces, if any:
/// `connection.broken` when the upstream's refusal breaks it.
fn failure_event(
    broker: &Broker,
    connection: &Connection,
    failure: &Failure,
    now: Timestamp,
) -> Option<WebhookEvent> {
    let kind = webhook_rules::on_failure(connection.status, failure)?;
    let Failure::Broken { error } = failure else {
        return None;
    };
    let data = json!({
        "error": refusal_code(error),
        "errorDescription": error,
        "failureCount": connection.failure_count + 1,
    });
    webhooks::event(broker, kind, connection, "broken", data, now)
}

/// A connection's tokens as kept, from what the upstream answered; what it left out
/// (Google's unchanged refresh token, the scopes) comes from `before`.
pub fn sealed_tokens(
    broker: &Broker,
    id: &ConnectionId,
    answer: &Refreshed,
    before: Option<&ConnectionTokens>,
) -> ConnectionTokens {
    let sealer = &broker.0.sealer;
    let at = |ms: Option<i64>| ms.map(|ms| Timestamp(ms / 1000));
    let (refresh, refresh_expires_at) = match (&answer.refresh_token, before) {
        (Some(token), _) => (
            Some(sealer.seal(id, TokenRole::Refresh, token)),
            at(answer.refresh_expires_at),
        ),
        (None, Some(before)) => (before.refresh.clone(), before.refresh_expires_at),
        (None, None) => (None, None),
    };
    let scopes = match (&answer.scope, before) {
        (Some(scope), _) => refreshd_core::Scopes::parse(scope),
        (None, Some(before)) => before.scopes.clone(),
        (None, None) => refreshd_core::Scopes::default(),
    };
    ConnectionTokens {
        access: sealer.seal(id, TokenRole::Access, &answer.token),
        access_expires_at: at(answer.expires_at),
        refresh,
        refresh_expires_at,
        scopes,
    }
}

/// What a failed refresh writes (`rules::connections`): the grant refused breaks the
/// connection; an unknown outcome backs off past the broker's full hold; others back off.
fn failure(broker: &Broker, connection: &Connection, e: &BrokerError, now: Timestamp) -> Failure {
    let attempt = match e {
        _ if e.outcome_unknown() => FailedAttempt::NoAnswer,
        BrokerError::InvalidGrant { upstream_error, .. } => FailedAttempt::Answered {
            status: 400,
            error: Some(upstream_error),
        },
        _ => FailedAttempt::Answered {
            status: 502,
            error: None,
        },
    };
    let retry_after = Backoff::default().retry_after(
        connection.failure_count + 1,
        now,
        refreshd_core::random::fraction(),
    );
    match rules::classify(attempt) {
        FailureKind::Refused => {
            let code = match e {
                BrokerError::InvalidGrant { upstream_error, .. } => upstream_error.as_str(),
                _ => "refused",
            };
            Failure::Broken {
                error: format!("{code}{REFUSAL_SEPARATOR}{e}"),
            }
        }
        FailureKind::Transient => Failure::BackingOff {
            error: e.to_string(),
            retry_after,
        },
        FailureKind::Unknown => Failure::BackingOff {
            error: e.to_string(),
            retry_after: retry_after.max(now.plus_secs(lease::hold_secs(broker) as i64)),
        },
    }
}

/// Keeps `holder`'s claim on `connection` for the broker's full hold (a renewal never shortens
/// it), so no instance sends its refresh token while what happened to the last one is unknown.
async fn hold(broker: &Broker, connection: &Connection, holder: [u8; 16]) {
    let until = broker
        .0
        .clock
        .now()
        .plus_secs(lease::hold_secs(broker) as i64);
    match broker
        .0
        .store
        .renew_claim(&connection.id, holder, until)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            connection = connection.id.as_str(),
            "a connection's claim had lapsed before it could be held; another instance may \
             refresh it with the refresh token last stored"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not hold a claim on a connection; it will lapse")
        }
    }
}

async fn release(broker: &Broker, id: &ConnectionId, holder: [u8; 16]) {
    if let Err(e) = broker.0.store.release_claim(id, holder).await {
        tracing::warn!(error = %e, "could not release a claim on a connection; it will expire");
    }
}
