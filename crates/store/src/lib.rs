//! refreshd's storage, in domain words: the traits the handlers call, the records they pass,
//! and the rules every adapter applies alike. The adapters are crates of their own
//! (`refreshd-store-sqlite`, `refreshd-store-postgres`); `tests/contract.rs` holds each to the
//! same contract.

mod error;
mod model;
pub mod rules;
#[cfg(feature = "testing")]
pub mod testing;
mod traits;

pub use error::StoreError;
pub use model::{
    ActiveToken, ApiKey, App, AttemptCounts, AttemptLimits, Authorization, ClaimAttempt,
    Connection, ConnectionFilter, ConnectionTokens, Consent, Delivery, DeliveryAttempt,
    DeliveryFilter, DeliveryStatus, DevicePoll, Failure, Grant, NewAccess, NewApp, NewCode,
    NewConnection, NewDeviceCode, NewPair, NewUser, PendingDevice, RedeemedCode, Redelivery,
    Rotate, Rotation, Session, SigningKey, Swept, User, WebhookEvent, WebhookEventKind,
};
pub use traits::access_tokens::AccessTokens;
pub use traits::accounts::{Apps, Users};
pub use traits::broker::{Callers, Leases, Replays};
pub use traits::codes::Codes;
pub use traits::connections::Connections;
pub use traits::consents::Consents;
pub use traits::device_codes::DeviceCodes;
pub use traits::families::Families;
pub use traits::housekeeping::{Gauges, Housekeeping};
pub use traits::sign_in_attempts::SignInAttempts;
pub use traits::signing_keys::SigningKeys;
pub use traits::web_sessions::WebSessions;
pub use traits::webhooks::Webhooks;

/// Everything refreshd keeps; one adapter implements all of it.
pub trait Store:
    Apps
    + Users
    + SignInAttempts
    + WebSessions
    + Consents
    + Codes
    + DeviceCodes
    + Families
    + AccessTokens
    + Housekeeping
    + Callers
    + Replays
    + Leases
    + Connections
    + Webhooks
    + SigningKeys
    + Gauges
{
}

impl<T> Store for T where
    T: Apps
        + Users
        + SignInAttempts
        + WebSessions
        + Consents
        + Codes
        + DeviceCodes
        + Families
        + AccessTokens
        + Housekeeping
        + Callers
        + Replays
        + Leases
        + Connections
        + Webhooks
        + SigningKeys
        + Gauges
{
}
