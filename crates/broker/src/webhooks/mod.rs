//! Webhooks: connections' changes announced to the configured endpoints, signed per the
//! Standard Webhooks spec so receivers verify them with the off-the-shelf `standardwebhooks`
//! package. An event is written to the outbox (`refreshd_store::Webhooks`) in the transaction
//! of the change that causes it (`event` builds it, `rules::webhooks` says which); the
//! deliverer (`deliverer.rs`) sends it.

pub mod deliverer;
mod signature;

use refreshd_core::Timestamp;
use refreshd_store::rules::webhooks::RetrySchedule;
use refreshd_store::{Connection, WebhookEvent, WebhookEventKind};
use serde_json::{Map, Value, json};

use crate::state::Broker;
pub use signature::{WebhookSecret, sign};

/// Where and how connections' events are announced.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Every event goes to each of these URLs; none: no events are written.
    pub endpoints: Vec<String>,
    /// Signs every delivery; set whenever `endpoints` is not empty.
    pub secret: Option<WebhookSecret>,
    /// The events announced.
    pub events: Vec<WebhookEventKind>,
    /// The waits between a failed delivery's attempts.
    pub retry: RetrySchedule,
    /// The longest one attempt may take, seconds.
    pub timeout_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            secret: None,
            events: DEFAULT_EVENTS.to_vec(),
            retry: RetrySchedule::default(),
            timeout_secs: 15,
        }
    }
}

/// The events announced unless configured otherwise: `connection.refreshed` is opt-in.
pub const DEFAULT_EVENTS: [WebhookEventKind; 3] = [
    WebhookEventKind::Broken,
    WebhookEventKind::Recovered,
    WebhookEventKind::Deleted,
];

impl WebhookSettings {
    /// Whether anything is announced at all (and so a deliverer runs).
    pub fn is_on(&self) -> bool {
        !self.endpoints.is_empty() && self.secret.is_some()
    }
}

/// The event `kind` about `connection` at `at`, with `data` besides what every event says
/// (its id, provider, status and metadata), if `kind` is announced; `None` if not. The body
/// is the Standard Webhooks shape `{type, timestamp, data}`, and never holds a token.
pub(crate) fn event(
    broker: &Broker,
    kind: WebhookEventKind,
    connection: &Connection,
    status: &str,
    data: Value,
    at: Timestamp,
) -> Option<WebhookEvent> {
    let settings = &broker.0.settings.webhooks;
    if !settings.is_on() || !settings.events.contains(&kind) {
        return None;
    }
    let mut fields = Map::new();
    fields.insert("connectionId".into(), json!(connection.id.as_str()));
    fields.insert("provider".into(), json!(connection.upstream.as_str()));
    fields.insert("status".into(), json!(status));
    fields.insert("metadata".into(), metadata(connection));
    if let Value::Object(more) = data {
        fields.extend(more);
    }
    let body = json!({
        "type": kind.as_str(),
        "timestamp": rfc3339(at),
        "data": fields,
    });
    Some(WebhookEvent {
        id: new_event_id(),
        kind,
        payload: body.to_string(),
        endpoints: settings.endpoints.clone(),
        at,
    })
}

/// A connection's metadata as the JSON its creator gave, `null` if none.
fn metadata(connection: &Connection) -> Value {
    connection
        .metadata
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

/// `msg_` and 27 base62 characters: the `webhook-id` of every attempt at the event.
fn new_event_id() -> String {
    format!("msg_{}", refreshd_core::random::base62(27))
}

/// `at` as RFC 3339 in UTC, e.g. `2026-05-01T12:00:00Z`.
fn rfc3339(at: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(at.secs())
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A webhook URL as the deliverer's client reads it, checked: http or https, with a host.
pub fn parse_endpoint(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{} must be an http or https URL",
            endpoint_shown(raw)
        ));
    }
    Ok(url)
}

/// An endpoint as shown (the CLI, errors): scheme, host, port and path, without credentials,
/// query or fragment, which may hold a secret.
pub fn endpoint_shown(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// The milliseconds since the epoch of `at`, as the API shows times.
pub(crate) fn millis(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| json!(at.secs() * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_shown_without_what_may_hold_a_secret() {
        assert_eq!(
            endpoint_shown("https://user:pa55@hooks.example.com:8443/in?token=s3cret#x"),
            "https://hooks.example.com:8443/in"
        );
        assert_eq!(endpoint_shown("::"), "(not a URL)");
        assert!(parse_endpoint("https://hooks.example.com/in").is_ok());
        for bad in [
            "ftp://hooks.example.com/",
            "hooks.example.com/in",
            "http://",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        let refused = parse_endpoint("ftp://u:s3cret@hooks.example.com/").unwrap_err();
        assert!(!refused.contains("s3cret"), "{refused}");
    }
}
