//! The device flow (RFC 8628), shared by both dialects: starting an authorization and judging
//! a device's poll. Each dialect renders the outcomes in its own shapes.

use refreshd_core::device::{device_code_digest, generate_device_code};
use refreshd_core::{Dialect, UserCode};
use refreshd_store::{App, AttemptLimits, DevicePoll, NewDeviceCode, StoreError};

use crate::Provider;
use crate::issue::{Occasion, TokenAnswer, mint};
use crate::web::ClientAddress;

/// Seconds a device waits between polls until told to slow down.
pub const INTERVAL_SECS: i64 = 5;

/// Draws of fresh codes before giving up; a collision of live user codes is rare already.
const ATTEMPTS: usize = 5;

/// Device authorizations one client address may start in 15 minutes: 30 for one app, 60 in
/// all. Each start stores a row that lives until an hour after it expires, so an address
/// asking without end is refused (counted with the sign-in attempts, in buckets of their own).
const START_LIMITS: AttemptLimits = AttemptLimits {
    per_login: 30,
    per_address: 60,
    window_secs: 15 * 60,
};

/// How long a refused start is told to wait: a whole window, at most.
pub const RETRY_AFTER_SECS: i64 = 15 * 60;

/// A started authorization: the codes in clear, for the device's answer only.
pub struct Started {
    pub device_code: String,
    pub user_code: UserCode,
    pub expires_in: i64,
    pub interval: i64,
}

/// The grant type a device polls with, in both dialects.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Why a device authorization was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the app has the device flow off")]
    Disabled,
    #[error("{}", crate::scopes::TOO_MANY)]
    InvalidScope,
    /// This address started too many authorizations lately (`START_LIMITS`).
    #[error("too many device codes from this address")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a new device authorization for `app` and the scopes `raw_scope` asks for, alive
/// for `expires_in` seconds, started from `client`; the app must have the device flow on, and
/// the address must be within `START_LIMITS`.
pub async fn start(
    provider: &Provider,
    app: &App,
    raw_scope: &str,
    expires_in: i64,
    client: &ClientAddress,
) -> Result<Started, StartError> {
    if !app.device_flow {
        return Err(StartError::Disabled);
    }
    let scopes = crate::scopes::requested(raw_scope).ok_or(StartError::InvalidScope)?;
    let now = provider.clock.now();
    // Without a known address (a server without connection info), every such start shares one.
    let address = format!("device-start:{}", client.get().unwrap_or("unknown"));
    let app_key = format!("app:{}", app.client_id.as_str());
    let Some(counted) = provider
        .store
        .count_sign_in_attempt(&app_key, &address, START_LIMITS, now)
        .await?
    else {
        return Err(StartError::TooMany);
    };
    if counted.login == START_LIMITS.per_login || counted.address == START_LIMITS.per_address {
        tracing::warn!(target: refreshd_core::audit::AUDIT, event = "device.start_limited",
            client_id = %app.client_id, client = %address,
            "an address reached its limit of device-flow starts");
    }
    for _ in 0..ATTEMPTS {
        let (device_code, user_code) = (generate_device_code(), UserCode::generate());
        let new = NewDeviceCode {
            device_digest: device_code_digest(&device_code),
            user_code_digest: user_code.digest(),
            app_id: app.id,
            scopes: scopes.clone(),
            interval_secs: INTERVAL_SECS,
            expires_at: now.plus_secs(expires_in),
        };
        if provider.store.store_device_code(new, now).await? {
            return Ok(Started {
                device_code,
                user_code,
                expires_in,
                interval: INTERVAL_SECS,
            });
        }
    }
    Err(StoreError::Conflict("a fresh device code").into())
}

/// What a device's poll comes to.
pub enum Polled {
    Issued(TokenAnswer),
    Pending,
    SlowDown {
        interval: i64,
    },
    Expired,
    Denied,
    /// Unknown, another app's, or redeemed already.
    Unknown,
    /// The app has the device flow off (switched off since the authorization started).
    Disabled,
}

/// Judges a poll by `app` with `device_code`; on approval starts the token family and
/// answers its pair, with the scopes in the app's dialect's form.
pub async fn poll(provider: &Provider, app: &App, device_code: &str) -> Result<Polled, StoreError> {
    let dialect = app.kind.dialect();
    if !app.device_flow {
        crate::grants::count(dialect, "device_code", "refused");
        return Ok(Polled::Disabled);
    }
    let now = provider.clock.now();
    let minted = mint(app, Occasion::NewFamily, "", &provider.lifetimes, now);
    let polled = provider
        .store
        .poll_device_code(device_code_digest(device_code), app.id, minted.pair, now)
        .await;
    let count = |outcome| crate::grants::count(dialect, "device_code", outcome);
    let polled = polled.inspect_err(|_| count("failed"))?;
    Ok(match polled {
        DevicePoll::Issued { grant } => {
            count("issued");
            let mut answer = minted.answer;
            answer.scope = match dialect {
                Dialect::Github => grant.scopes.to_github(),
                Dialect::Google => grant.scopes.to_spaced(),
            };
            Polled::Issued(answer)
        }
        DevicePoll::Pending => {
            count("pending");
            Polled::Pending
        }
        DevicePoll::SlowDown { interval_secs } => {
            count("slow_down");
            Polled::SlowDown {
                interval: interval_secs,
            }
        }
        DevicePoll::Expired => {
            count("refused");
            Polled::Expired
        }
        DevicePoll::Denied => {
            count("refused");
            Polled::Denied
        }
        DevicePoll::Unknown => {
            count("refused");
            Polled::Unknown
        }
    })
}
