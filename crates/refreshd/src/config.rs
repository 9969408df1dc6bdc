//! One typed configuration: defaults, then a TOML file, then `REFRESHD_*`, then flags.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use std::path::PathBuf;

use refreshd_broker::{
    BrokerSettings, GithubUpstream, GoogleUpstream, WebhookSecret, WebhookSettings,
};
use refreshd_core::Lifetimes;
use refreshd_provider::TrustedProxies;
use refreshd_store::WebhookEventKind;
use refreshd_store::rules::connections::RefreshSchedule;
use refreshd_store::rules::webhooks::RetrySchedule;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// `sqlite://PATH` (the default) or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub database_url: DatabaseUrl,
    /// Most connections to PostgreSQL this instance opens.
    pub database_pool_size: usize,
    pub listen: String,
    /// Where clients reach refreshd; `http://{listen}` if unset.
    pub public_url: Option<String>,
    /// A `tracing` filter, e.g. `info` or `refreshd=debug`.
    pub log: String,
    pub lifetimes: Lifetimes,
    /// The broker's upstreams (`REFRESHD_GITHUB_CLIENT_ID`, `REFRESHD_GOOGLE_TOKEN_URL`, …).
    pub github: GithubUpstream,
    pub google: GoogleUpstream,
    pub upstream_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// How long the broker replays a refresh's answer to the same caller and old token.
    pub replay_window_secs: i64,
    /// Lifetime of broker sessions from the login endpoints.
    pub session_secs: i64,
    /// 64 hex characters; else read from (or generated into) `master_key_file`.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// Default: `refreshd.key` beside the SQLite database.
    pub master_key_file: Option<PathBuf>,
    /// `text` (the default; plain when not writing to a terminal) or `json`, one object a line.
    pub log_format: LogFormat,
    /// Where `GET /metrics` (Prometheus) is served, e.g. `127.0.0.1:9090`; off when unset.
    pub metrics_listen: Option<String>,
    /// How long a client may take to send a request head (from connecting, or from the first
    /// byte of a later request on a kept-alive connection).
    pub header_read_timeout_secs: u64,
    /// How long a kept-alive connection may idle between requests.
    pub idle_timeout_secs: u64,
    /// How long a client may take to send a request body, once its head has arrived.
    pub body_read_timeout_secs: u64,
    /// Client connections open at once (lowered to fit the open-file limit); more wait.
    pub max_connections: usize,
    /// Largest request head, in bytes (at least 8192); a larger one is answered 431.
    pub max_header_bytes: usize,
    /// SQLite: the WAL is checkpointed and restarted when it grows past this many bytes.
    pub sqlite_wal_max_bytes: u64,
    /// Serve HTTPS with this PEM certificate chain and key (both or neither).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client whose
    /// sign-in attempts are counted; from anyone else the header is ignored.
    pub trusted_proxies: TrustedProxies,
    /// Whether this instance runs the refresher of connections.
    pub connection_refresher: bool,
    /// How often the refresher looks for due connections, seconds.
    pub connection_refresher_interval_secs: u64,
    /// Most refreshes the refresher runs at once against one upstream.
    pub connection_refresh_concurrency: usize,
    /// How long before its access token expires a connection is refreshed, seconds.
    pub connection_refresh_lead_secs: i64,
    /// The longest a connection goes unrefreshed, days (unused refresh tokens expire).
    pub connection_keepalive_days: i64,
    /// Where connections' events are POSTed: one URL or several (a list, or one string
    /// separated by commas or whitespace, as `REFRESHD_WEBHOOK_URL` gives them).
    #[serde(deserialize_with = "listed")]
    pub webhook_url: Vec<String>,
    /// The Standard Webhooks signing secret, `whsec_<base64>`; required with `webhook_url`.
    #[serde(skip_serializing)]
    pub webhook_secret: Option<SecretString>,
    /// The events announced, of `connection.broken`, `connection.recovered`,
    /// `connection.refreshed` (every successful refresh; off by default) and
    /// `connection.deleted`.
    #[serde(deserialize_with = "listed")]
    pub webhook_events: Vec<String>,
    /// The longest one delivery attempt may take, seconds.
    pub webhook_timeout_secs: u64,
    /// The waits between a failed delivery's attempts, seconds; after the last, it fails.
    #[serde(deserialize_with = "listed")]
    pub webhook_retry_schedule_secs: Vec<u64>,
    /// The `iss` of id_tokens and the discovery document's `issuer` (Google's by default,
    /// which Google's libraries accept without being told).
    pub oidc_issuer: String,
}

/// A list given as an array, or as one string of items separated by commas or whitespace
/// (as an environment variable gives it).
fn listed<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    use serde::de::Error;
    use serde_json::Value;
    let items: Vec<String> = match Value::deserialize(deserializer)? {
        Value::Null => Vec::new(),
        Value::String(text) => text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(values) => values
            .into_iter()
            .map(|value| match value {
                Value::String(text) => text,
                other => other.to_string(),
            })
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        other => return Err(D::Error::custom(format!("expected a list, not {other}"))),
    };
    items
        .iter()
        .map(|item| {
            item.parse()
                .map_err(|e| D::Error::custom(format!("{item:?}: {e}")))
        })
        .collect()
}

/// A database URL. It may hold a password, so it is shown (`Debug`, `Display`) without its
/// user, password and query: `postgres://…@db.internal:5432/refreshd`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The whole URL, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self
            .0
            .split_once('?')
            .map_or(self.0.as_str(), |(base, _)| base);
        match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, _)), Some(at)) => write!(f, "{scheme}://…{}", &url[at..]),
            _ => f.write_str(url),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://refreshd.db".into(),
            database_pool_size: 16,
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            log: "info".into(),
            lifetimes: Lifetimes::default(),
            github: GithubUpstream::default(),
            google: GoogleUpstream::default(),
            upstream_timeout_secs: 10,
            connect_timeout_secs: 3,
            replay_window_secs: 60,
            session_secs: 7 * 24 * 3600,
            master_key: None,
            master_key_file: None,
            log_format: LogFormat::Text,
            metrics_listen: None,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_read_timeout_secs: 30,
            max_connections: 4096,
            max_header_bytes: 32 * 1024,
            sqlite_wal_max_bytes: crate::store::DEFAULT_WAL_MAX_BYTES,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: TrustedProxies::default(),
            connection_refresher: true,
            connection_refresher_interval_secs: 5,
            connection_refresh_concurrency: 8,
            connection_refresh_lead_secs: 600,
            connection_keepalive_days: 7,
            webhook_url: Vec::new(),
            webhook_secret: None,
            webhook_events: refreshd_broker::DEFAULT_EVENTS
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .collect(),
            webhook_timeout_secs: 15,
            webhook_retry_schedule_secs: RetrySchedule::default().waits_secs,
            oidc_issuer: refreshd_provider::GOOGLE_ISSUER.to_owned(),
        }
    }
}

/// hyper reads request heads into a buffer of at least this size.
const MIN_HEADER_BYTES: usize = 8192;
/// The largest request head accepted: 1 MiB.
const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// The longest connection timeout accepted.
const MAX_CONNECTION_TIMEOUT_SECS: u64 = 24 * 3600;

/// The flags that override configuration; only those given are merged.
#[derive(Serialize)]
struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
}

/// Environment variables read as written, never parsed as numbers (see `with_verbatim_env`).
const VERBATIM: &[&str] = &[
    "github_client_id",
    "github_client_secret",
    "google_client_id",
    "google_client_secret",
    "master_key",
    "webhook_url",
    "webhook_secret",
];

/// `REFRESHD_*` names to configuration keys: `__` nests (`LIFETIMES__CODE_SECS`), and the
/// upstreams' settings nest under their name (`GITHUB_CLIENT_ID` is `github.client_id`).
fn env_key(key: &str) -> String {
    let key = key.to_ascii_lowercase().replace("__", ".");
    let nested = ["github_", "google_"].iter().find_map(|prefix| {
        key.strip_prefix(prefix)
            .map(|rest| format!("{}.{rest}", &prefix[..6]))
    });
    nested.unwrap_or(key)
}

impl Config {
    pub fn load(cli: &Cli) -> Result<Self, Box<figment::Error>> {
        let (listen, public_url) = match &cli.command {
            Command::Serve(args) => (args.listen.clone(), args.public_url.clone()),
            _ => (None, None),
        };
        let flags = Flags {
            database_url: cli.database.clone(),
            listen,
            public_url,
        };
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &cli.config {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(
                Env::prefixed("REFRESHD_")
                    .ignore(&["config"])
                    .ignore(VERBATIM)
                    .map(|key| env_key(key.as_str()).into()),
            )
            .merge(Serialized::defaults(flags))
            .extract::<Self>()
            .map_err(Box::new)?
            .with_verbatim_env()
            .validated()
    }

    /// Client ids, secrets and the master key, taken from the environment as written: figment
    /// would read `0123` as the number 123.
    fn with_verbatim_env(mut self) -> Self {
        let var = |key: &str| std::env::var(format!("REFRESHD_{}", key.to_ascii_uppercase())).ok();
        if let Some(v) = var("github_client_id") {
            self.github.client_id = Some(v);
        }
        if let Some(v) = var("github_client_secret") {
            self.github.client_secret = Some(v.into());
        }
        if let Some(v) = var("google_client_id") {
            self.google.client_id = Some(v);
        }
        if let Some(v) = var("google_client_secret") {
            self.google.client_secret = Some(v.into());
        }
        if let Some(v) = var("master_key") {
            self.master_key = Some(v.into());
        }
        if let Some(v) = var("webhook_url") {
            self.webhook_url = v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = var("webhook_secret") {
            self.webhook_secret = Some(v.into());
        }
        self
    }

    /// Lifetimes must be positive (the grace window may be 0, which disables replays).
    fn validated(self) -> Result<Self, Box<figment::Error>> {
        let l = &self.lifetimes;
        let positive = [
            ("lifetimes.access_token_secs", l.access_token_secs),
            ("lifetimes.refresh_token_secs", l.refresh_token_secs),
            ("lifetimes.code_secs", l.code_secs),
        ];
        for (key, value) in positive {
            if value <= 0 {
                return Err(Box::new(figment::Error::from(format!(
                    "{key} must be positive, not {value}"
                ))));
            }
        }
        let broker = [
            ("upstream_timeout_secs", self.upstream_timeout_secs as i64),
            ("connect_timeout_secs", self.connect_timeout_secs as i64),
            ("session_secs", self.session_secs),
            (
                "header_read_timeout_secs",
                self.header_read_timeout_secs as i64,
            ),
            ("idle_timeout_secs", self.idle_timeout_secs as i64),
            ("body_read_timeout_secs", self.body_read_timeout_secs as i64),
            ("max_connections", self.max_connections as i64),
            ("sqlite_wal_max_bytes", self.sqlite_wal_max_bytes as i64),
        ];
        for (key, value) in broker {
            if value <= 0 {
                return Err(Box::new(figment::Error::from(format!(
                    "{key} must be positive, not {value}"
                ))));
            }
        }
        let connection_timeouts = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
        ];
        for (key, value) in connection_timeouts {
            if value > MAX_CONNECTION_TIMEOUT_SECS {
                return Err(Box::new(figment::Error::from(format!(
                    "{key} must be at most {MAX_CONNECTION_TIMEOUT_SECS} (a day), not {value}"
                ))));
            }
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return Err(Box::new(figment::Error::from(format!(
                "max_header_bytes must be from {MIN_HEADER_BYTES} to {MAX_HEADER_BYTES}"
            ))));
        }
        if self.database_pool_size == 0 {
            return Err(Box::new(figment::Error::from(
                "database_pool_size must be positive".to_owned(),
            )));
        }

        if !(1..=86_400).contains(&self.connection_refresher_interval_secs)
            || !(1..=1024).contains(&self.connection_refresh_concurrency)
        {
            return Err(Box::new(figment::Error::from(
                "connection_refresher_interval_secs must be 1 to 86400 and \
                 connection_refresh_concurrency 1 to 1024"
                    .to_owned(),
            )));
        }
        if !(0..=86_400).contains(&self.connection_refresh_lead_secs)
            || !(1..=365).contains(&self.connection_keepalive_days)
        {
            return Err(Box::new(figment::Error::from(
                "connection_refresh_lead_secs must be 0 to 86400 and connection_keepalive_days \
                 1 to 365"
                    .to_owned(),
            )));
        }
        if self.replay_window_secs < 0 {
            return Err(Box::new(figment::Error::from(
                "replay_window_secs must be 0 or more".to_owned(),
            )));
        }
        self.webhook_settings()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        if !(self.oidc_issuer.starts_with("https://") || self.oidc_issuer.starts_with("http://"))
            || self.oidc_issuer.contains(['?', '#', ' '])
        {
            return Err(Box::new(figment::Error::from(format!(
                "oidc_issuer must be an http(s) URL without query or fragment, not {:?}",
                self.oidc_issuer
            ))));
        }
        if l.grace_window_secs < 0 {
            return Err(Box::new(figment::Error::from(format!(
                "lifetimes.grace_window_secs must be 0 or more, not {}",
                l.grace_window_secs
            ))));
        }
        Ok(self)
    }

    pub fn broker_settings(&self) -> BrokerSettings {
        BrokerSettings {
            github: self.github.clone(),
            google: self.google.clone(),
            upstream_timeout_secs: self.upstream_timeout_secs,
            connect_timeout_secs: self.connect_timeout_secs,
            replay_window_secs: self.replay_window_secs,
            session_secs: self.session_secs,
            refresh_schedule: RefreshSchedule {
                lead_secs: self.connection_refresh_lead_secs,
                keepalive_secs: self.connection_keepalive_days * 24 * 3600,
            },
            refresh_concurrency: self.connection_refresh_concurrency,
            webhooks: self
                .webhook_settings()
                .expect("checked when the configuration was loaded"),
        }
    }

    /// The webhook keys, checked: URLs over http or https, a well-formed secret whenever a URL
    /// is set, known events, a timeout from 1 to 300 seconds and positive waits.
    fn webhook_settings(&self) -> Result<WebhookSettings, String> {
        for (n, url) in self.webhook_url.iter().enumerate() {
            refreshd_broker::parse_endpoint(url)
                .map_err(|e| format!("webhook_url (URL {}): {e}", n + 1))?;
        }
        let secret = match (&self.webhook_secret, self.webhook_url.is_empty()) {
            (Some(secret), _) => Some(WebhookSecret::parse(secret.expose_secret())?),
            (None, true) => None,
            (None, false) => {
                return Err(format!(
                    "webhook_url is set but webhook_secret is not: set REFRESHD_WEBHOOK_SECRET \
                     to a Standard Webhooks secret, whsec_ and the base64 of 24 to 64 random \
                     bytes (for example {})",
                    WebhookSecret::generate()
                ));
            }
        };
        let events = self
            .webhook_events
            .iter()
            .map(|name| {
                WebhookEventKind::parse(name).ok_or_else(|| {
                    format!(
                        "webhook_events: unknown event {name:?}; known: {}",
                        WebhookEventKind::ALL
                            .map(WebhookEventKind::as_str)
                            .join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !(1..=300).contains(&self.webhook_timeout_secs) {
            return Err("webhook_timeout_secs must be from 1 to 300".into());
        }
        if self.webhook_retry_schedule_secs.contains(&0) {
            return Err("webhook_retry_schedule_secs: every wait must be positive".into());
        }
        Ok(WebhookSettings {
            endpoints: self.webhook_url.clone(),
            secret,
            events,
            retry: RetrySchedule {
                waits_secs: self.webhook_retry_schedule_secs.clone(),
            },
            timeout_secs: self.webhook_timeout_secs,
        })
    }

    /// Opens (creating and migrating) the configured database.
    pub async fn open_store(
        &self,
    ) -> Result<std::sync::Arc<dyn refreshd_store::Store>, refreshd_store::StoreError> {
        crate::store::open_with(
            self.database_url.expose(),
            self.database_pool_size,
            self.sqlite_wal_max_bytes,
        )
        .await
    }

    /// What one client may take of the server. The connection cap is lowered to leave room
    /// under the process's open-file limit (raised first to its hard limit) for everything
    /// else, so accepting never runs out of descriptors.
    pub fn connection_limits(&self) -> crate::listener::Limits {
        let files = crate::listener::raise_open_files_limit().unwrap_or(u64::MAX);
        let room = files
            .saturating_sub(crate::listener::RESERVED_FILES + self.database_pool_size as u64)
            .max(1);
        crate::listener::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            body_read_timeout: std::time::Duration::from_secs(self.body_read_timeout_secs),
            max_connections: self.max_connections.min(room as usize),
            max_header_bytes: self.max_header_bytes,
        }
    }

    /// Where the master key is kept when not configured inline.
    pub fn master_key_path(&self) -> PathBuf {
        if let Some(path) = &self.master_key_file {
            return path.clone();
        }
        let beside_database =
            crate::store::sqlite_path_of(self.database_url.expose()).and_then(|db| {
                std::path::Path::new(db)
                    .parent()
                    .map(|dir| dir.join("refreshd.key"))
            });
        beside_database.unwrap_or_else(|| PathBuf::from("refreshd.key"))
    }

    /// The public URL without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url_at(&self.listen)
    }

    /// The public URL of a server listening at `addr`: `public_url` if set, else `addr` over
    /// https if refreshd serves TLS, http if not.
    pub fn public_url_at(&self, addr: impl std::fmt::Display) -> String {
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_never_reach_logs() {
        let shown = |url: &str| DatabaseUrl::from(url).to_string();
        assert_eq!(shown("postgres://u:secret@db/x"), "postgres://…@db/x");
        assert_eq!(
            shown("postgres://db/x?user=u&password=secret"),
            "postgres://db/x"
        );
        assert_eq!(shown("sqlite://refreshd.db"), "sqlite://refreshd.db");
    }

    #[test]
    fn debugging_the_configuration_shows_no_secret() {
        let mut config = Config {
            database_url: "postgres://refreshd:db-password@db:5432/refreshd".into(),
            master_key: Some("00".repeat(32).into()),
            ..Config::default()
        };
        config.github.client_secret = Some("github-client-secret".into());
        config.webhook_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let debugged = format!("{config:?}");
        assert!(
            debugged.contains("postgres://…@db:5432/refreshd"),
            "{debugged}"
        );
        assert!(!debugged.contains("db-password"), "{debugged}");
        assert!(!debugged.contains(&"00".repeat(32)), "{debugged}");
        assert!(!debugged.contains("github-client-secret"), "{debugged}");
        assert!(!debugged.contains("MfKQ9r8G"), "{debugged}");
    }

    #[test]
    fn a_webhook_url_needs_a_well_formed_secret() {
        let with = |urls: &[&str], secret: Option<&str>| Config {
            webhook_url: urls.iter().map(|u| u.to_string()).collect(),
            webhook_secret: secret.map(Into::into),
            ..Config::default()
        };
        let missing = with(&["https://hooks.example/a"], None)
            .webhook_settings()
            .unwrap_err();
        assert!(missing.contains("webhook_secret"), "{missing}");
        let malformed = with(&["https://hooks.example/a"], Some("not-a-secret"))
            .webhook_settings()
            .unwrap_err();
        assert!(malformed.contains("whsec_"), "{malformed}");
        assert!(!malformed.contains("not-a-secret"), "{malformed}");
        let not_http = with(&["ftp://hooks.example/a"], None)
            .webhook_settings()
            .unwrap_err();
        assert!(not_http.contains("http"), "{not_http}");

        let urls = ["https://a.example/hook", "http://b.example:8080/hook"];
        let settings = with(&urls, Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .webhook_settings()
            .unwrap();
        assert!(settings.is_on());
        assert_eq!(settings.endpoints, urls);
        // connection.refreshed is opt-in.
        assert_eq!(settings.events, refreshd_broker::DEFAULT_EVENTS);
        assert!(!Config::default().webhook_settings().unwrap().is_on());
        let unknown = Config {
            webhook_events: vec!["connection.exploded".into()],
            ..Config::default()
        };
        assert!(unknown.webhook_settings().is_err());
    }
}
