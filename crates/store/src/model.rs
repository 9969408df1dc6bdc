//! The records storage keeps and hands back.

use refreshd_core::{
    AppId, AppKind, ClientId, ConnectionId, ConnectionStatus, FamilyId, Login, Scopes, SealedKey,
    SealedToken, Timestamp, TokenDigest, Upstream, UserId,
};

#[derive(Clone, Debug)]
pub struct App {
    pub id: AppId,
    pub client_id: ClientId,
    pub name: String,
    pub kind: AppKind,
    /// The registered redirect (callback) URIs, one per line; the first is the default.
    pub redirect_uri: String,
    pub secret_digest: TokenDigest,
    pub expiring_tokens: bool,
    /// Whether the app may start the device flow (off by default, as on GitHub).
    pub device_flow: bool,
    /// The provider user who manages the app in the settings pages; `None`: only the CLI does.
    pub owner_id: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl App {
    /// The registered redirect URIs, in order.
    pub fn redirect_uris(&self) -> impl Iterator<Item = &str> {
        self.redirect_uri.lines().filter(|l| !l.is_empty())
    }
}

#[derive(Clone, Debug)]
pub struct NewApp {
    pub client_id: ClientId,
    pub name: String,
    pub kind: AppKind,
    /// One or more redirect URIs, one per line.
    pub redirect_uri: String,
    pub secret_digest: TokenDigest,
    pub expiring_tokens: bool,
    pub device_flow: bool,
    pub owner_id: Option<UserId>,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub login: Login,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub login: Login,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewCode {
    pub digest: TokenDigest,
    pub grant: Grant,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub expires_at: Timestamp,
    /// Whether the family the code starts gets a refresh token: always in GitHub's dialect;
    /// in Google's only for `access_type=offline` with consent given.
    pub with_refresh: bool,
    /// The authorize request's OpenID Connect `nonce`, returned in the code's id_token.
    pub nonce: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RedeemedCode {
    pub grant: Grant,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// `false`: the family was stored without the pair's refresh token; do not hand it out.
    pub with_refresh: bool,
    pub nonce: Option<String>,
}

/// Who a token family is for and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub app_id: AppId,
    pub user_id: UserId,
    /// Stored in GitHub's comma-separated form.
    pub scopes: Scopes,
}

#[derive(Clone, Debug)]
pub struct NewAccess {
    pub digest: TokenDigest,
    pub last_eight: String,
    pub expires_at: Option<Timestamp>,
}

/// An access token and, for expiring grants, the refresh token issued with it and when that
/// expires (`None`: never, as Google's).
#[derive(Clone, Debug)]
pub struct NewPair {
    pub access: NewAccess,
    pub refresh: Option<(TokenDigest, Option<Timestamp>)>,
}

impl NewPair {
    /// When every token of the pair has expired and the row can go; `None`: never.
    pub fn dead_after(&self) -> Option<Timestamp> {
        let access = self.access.expires_at?;
        match &self.refresh {
            None => Some(access),
            Some((_, None)) => None,
            Some((_, Some(refresh))) => Some(access.max(*refresh)),
        }
    }
}

/// A refresh token presented for rotation, and what replaces it if it may be rotated.
#[derive(Clone, Debug)]
pub struct Rotate {
    /// The presented refresh token.
    pub presented: TokenDigest,
    /// The app that presented it: another app's token is refused.
    pub app_id: AppId,
    pub successor: NewPair,
    /// The successor's answer, encrypted under the presented token, for a grace replay.
    pub sealed: Vec<u8>,
    /// How long after its rotation the presented token is answered again (0: never).
    pub grace_window_secs: i64,
}

#[derive(Clone, Debug)]
pub enum Rotation {
    /// This request rotated the token; the successor is stored for `grant`.
    Rotated { grant: Grant },
    /// The immediately previous token inside the grace window: the sealed successor answer.
    Replay { sealed: Vec<u8>, grant: Grant },
    /// The token was reused: its whole family is now revoked.
    FamilyRevoked,
    /// Unknown, expired, revoked, or another app's token.
    Rejected,
}

/// A live access token with everything GitHub's authorization object reports.
#[derive(Clone, Debug)]
pub struct Authorization {
    pub id: i64,
    pub app: App,
    pub user: User,
    pub scopes: Scopes,
    pub access_digest: TokenDigest,
    pub access_last_eight: String,
    pub access_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How many sign-in attempts may be counted in one window before further ones are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptLimits {
    /// At one login from one address.
    pub per_login: i64,
    /// From one address, at any login.
    pub per_address: i64,
    pub window_secs: i64,
}

/// Sign-in attempts not followed by a success in the current windows, the one just counted
/// included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptCounts {
    /// At this login from this address.
    pub login: i64,
    /// From this address, at any login.
    pub address: i64,
}

/// What one sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub codes: usize,
    /// Sealed grace-replay answers forgotten.
    pub replays: usize,
    /// Token pairs deleted because all their tokens had expired.
    pub tokens: usize,
}

/// A key a backend calls the broker with. Only its digest and last four characters are kept.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub last_four: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A broker session from a login endpoint: who signed in, through which upstream.
#[derive(Clone, Debug)]
pub struct Session {
    pub provider: String,
    pub subject: String,
    pub expires_at: Timestamp,
}

/// A user's approval of an app, from the consent page: later authorize requests for these
/// scopes (or fewer) skip the page.
#[derive(Clone, Debug)]
pub struct Consent {
    pub app: App,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A live token family of an app, as its owner sees it: whose, and its newest live token.
#[derive(Clone, Debug)]
pub struct ActiveToken {
    pub family_id: FamilyId,
    pub login: Login,
    pub scopes: Scopes,
    pub access_last_eight: String,
    pub created_at: Timestamp,
    /// When the access token expires; `None`: never.
    pub expires_at: Option<Timestamp>,
}

/// A connection's tokens as kept: sealed (`refreshd_core::TokenSealer`, bound to the
/// connection's id), with when they expire and what they allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionTokens {
    pub access: SealedToken,
    /// `None`: the access token never expires.
    pub access_expires_at: Option<Timestamp>,
    /// `None`: the grant has no refresh token (a GitHub token that never expires), so there
    /// is nothing to refresh.
    pub refresh: Option<SealedToken>,
    /// `None`: the refresh token does not expire (or there is none).
    pub refresh_expires_at: Option<Timestamp>,
    /// Stored in GitHub's comma-separated form.
    pub scopes: Scopes,
}

/// A connection as its creator gives it: tokens just obtained from the upstream.
#[derive(Clone, Debug)]
pub struct NewConnection {
    pub id: ConnectionId,
    pub upstream: Upstream,
    pub tokens: ConnectionTokens,
    /// When the refresher first looks at it (`rules::connections::RefreshSchedule`); `None`:
    /// never.
    pub next_refresh_at: Option<Timestamp>,
    /// The creator's small JSON object, as text; refreshd does not read it.
    pub metadata: Option<String>,
}

/// A user's grant with an upstream that refreshd holds and keeps fresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub upstream: Upstream,
    pub status: ConnectionStatus,
    pub tokens: ConnectionTokens,
    /// When its tokens were last obtained from the upstream: its creation or last refresh.
    pub last_refreshed_at: Timestamp,
    /// When the refresher should look at it next; `None`: never (broken, or nothing to
    /// refresh).
    pub next_refresh_at: Option<Timestamp>,
    /// Failed refreshes since the last one that worked.
    pub failure_count: i64,
    /// What the last failure was, in words; never a token.
    pub last_error: Option<String>,
    /// While backing off: no upstream call before this.
    pub retry_after: Option<Timestamp>,
    /// Until when someone's claim on it lasts (see `Connections::claim_due`); a claim whose
    /// time has passed binds no one.
    pub claimed_until: Option<Timestamp>,
    pub metadata: Option<String>,
    /// Changes on every change of the connection (not on claims): a write that names the
    /// version it read succeeds only if nothing changed since. Drawn from one counter for all
    /// connections, so it never repeats for an id, even after a delete. Compare versions for
    /// equality only: on PostgreSQL two racing writes may commit their values out of order.
    pub version: i64,
    /// When the id was first connected; a replacement keeps it.
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which connections to list: those after `after` in id order (byte order), at most `limit`,
/// of `upstream` and in `status` when given.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFilter {
    pub upstream: Option<Upstream>,
    pub status: Option<ConnectionStatus>,
    /// The last id of the previous page.
    pub after: Option<ConnectionId>,
    /// At most this many (0, the default, lists none).
    pub limit: i64,
}

/// A refresh that brought no new tokens, as recorded on the connection
/// (`rules::connections::after_failure` says what is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The upstream refused the grant: no refresh is tried again until the connection is
    /// replaced. `error` is the upstream's error in words, never a token.
    Broken { error: String },
    /// A failure that may pass: the next attempt waits until `retry_after`.
    BackingOff {
        error: String,
        retry_after: Timestamp,
    },
}

/// What claiming one connection came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimAttempt {
    /// It is the caller's until the claim's end: the connection as it now is.
    Claimed(Box<Connection>),
    /// Another holder's claim lasts until `until`.
    Held { until: Timestamp },
    /// There is no connection with that id.
    Missing,
}

/// What a connection's change announces to the configured webhook endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookEventKind {
    /// The upstream refused the grant: the connection is broken.
    Broken,
    /// A refresh worked on a connection that was broken or backing off.
    Recovered,
    /// A refresh worked (announced only when configured).
    Refreshed,
    /// The connection was deleted.
    Deleted,
}

impl WebhookEventKind {
    pub const ALL: [WebhookEventKind; 4] = [
        WebhookEventKind::Broken,
        WebhookEventKind::Recovered,
        WebhookEventKind::Refreshed,
        WebhookEventKind::Deleted,
    ];

    /// The event's `type`, e.g. `connection.broken`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventKind::Broken => "connection.broken",
            WebhookEventKind::Recovered => "connection.recovered",
            WebhookEventKind::Refreshed => "connection.refreshed",
            WebhookEventKind::Deleted => "connection.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// An event written with the connection change that causes it, in the same transaction, so
/// it exists exactly when the change committed: one delivery per endpoint, due at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `msg_…`: the `webhook-id` every delivery of it carries, retries included.
    pub id: String,
    pub kind: WebhookEventKind,
    /// The JSON body every delivery sends, as is; never a token.
    pub payload: String,
    /// Where it goes: one delivery each.
    pub endpoints: Vec<String>,
    /// When it happened; its deliveries are due then.
    pub at: Timestamp,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet delivered; attempted again at `next_attempt_at`.
    Pending,
    /// An attempt was answered 2xx.
    Delivered,
    /// Every attempt of the retry schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// One event on its way to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub kind: WebhookEventKind,
    pub connection_id: ConnectionId,
    pub endpoint: String,
    pub payload: String,
    pub status: DeliveryStatus,
    /// Attempts since it was (re)queued.
    pub attempts: i64,
    /// When it is attempted next, while pending.
    pub next_attempt_at: Option<Timestamp>,
    /// The HTTP status the last attempt was answered with, if it was answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, in words.
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// How an attempt at a delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryAttempt {
    /// Answered 2xx with `status`.
    Delivered { status: i64 },
    /// Not delivered: `status` if answered, why in `error`; attempted again at `retry_at`, or
    /// failed for good when `None` (`rules::webhooks::RetrySchedule`).
    NotDelivered {
        status: Option<i64>,
        error: String,
        retry_at: Option<Timestamp>,
    },
}

/// Which deliveries to list: the newest first, at most `limit`, in `status` when given.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub limit: i64,
}

/// What `Webhooks::redeliver` queues again: one delivery, or every delivery of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redelivery {
    Delivery(i64),
    Event(String),
}

/// A device authorization (RFC 8628) as it is started: both codes are kept only as digests.
#[derive(Clone, Debug)]
pub struct NewDeviceCode {
    /// The code the device polls with.
    pub device_digest: TokenDigest,
    /// The code the user enters, in its normal form (upper case, no dash).
    pub user_code_digest: TokenDigest,
    pub app_id: AppId,
    pub scopes: Scopes,
    /// The least number of seconds between two polls.
    pub interval_secs: i64,
    pub expires_at: Timestamp,
}

/// A device authorization waiting for its user: what the approval page shows.
#[derive(Clone, Debug)]
pub struct PendingDevice {
    pub app: App,
    pub scopes: Scopes,
    pub expires_at: Timestamp,
}

/// What a poll of a device code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such code, another app's, or one whose token was handed out already.
    Unknown,
    Expired,
    Denied,
    /// Not decided yet.
    Pending,
    /// Polled too soon: the device must wait `interval_secs` between polls from now on.
    SlowDown {
        interval_secs: i64,
    },
    /// Approved: a token family was started for `grant` with the poll's pair.
    Issued {
        grant: Grant,
    },
}

/// One of the provider's id_token signing keys. Its private key is kept only sealed under the
/// master key (`KeySealer`, bound to `kid`); the rest is public. Generations count up from 1;
/// the key that signs is the highest generation whose `signs_from` has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    pub generation: i64,
    /// The JOSE key id: 40 hex characters.
    pub kid: String,
    /// The PKCS#8 DER private key, sealed.
    pub sealed_private_key: SealedKey,
    /// A self-signed X.509 certificate of the public key, PEM, as `/oauth2/v1/certs` serves it.
    pub cert_pem: String,
    /// The public key's modulus and exponent, base64url without padding, as the JWK holds them.
    pub jwk_n: String,
    pub jwk_e: String,
    pub created_at: Timestamp,
    pub signs_from: Timestamp,
}
