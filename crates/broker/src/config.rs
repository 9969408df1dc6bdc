//! What the broker needs to know about its upstreams. Secrets are `SecretString`, so `Debug`
//! never shows them, and they are never serialized.

use std::path::PathBuf;

use refreshd_store::rules::connections::RefreshSchedule;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// GitHub (or anything speaking its dialect, such as another refreshd).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GithubUpstream {
    pub client_id: Option<String>,
    #[serde(skip_serializing)]
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    pub token_url: String,
    pub api_url: String,
}

impl Default for GithubUpstream {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            token_url: "https://github.com/login/oauth/access_token".into(),
            api_url: "https://api.github.com".into(),
        }
    }
}

/// Google (or anything speaking its dialect, such as another refreshd).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GoogleUpstream {
    pub client_id: Option<String>,
    #[serde(skip_serializing)]
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    pub token_url: String,
    pub userinfo_url: String,
    /// Where a deleted connection's grant is revoked.
    pub revoke_url: String,
    /// The redirect URI codes given to `/auth/google/exchange` were issued for, unless the
    /// request names one.
    pub redirect_uri: Option<String>,
}

impl Default for GoogleUpstream {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            revoke_url: "https://oauth2.googleapis.com/revoke".into(),
            redirect_uri: None,
        }
    }
}

/// The broker's settings, assembled by the binary from its configuration.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    pub github: GithubUpstream,
    pub google: GoogleUpstream,
    /// Whole upstream request, seconds.
    pub upstream_timeout_secs: u64,
    /// Establishing the upstream connection, seconds.
    pub connect_timeout_secs: u64,
    /// How long a refresh's answer is replayed to the same caller presenting the same token.
    pub replay_window_secs: i64,
    /// Lifetime of sessions from the login endpoints.
    pub session_secs: i64,
    /// When connections are next refreshed after their tokens were obtained.
    pub refresh_schedule: RefreshSchedule,
    /// Most refreshes the refresher runs at once against one upstream.
    pub refresh_concurrency: usize,
    /// Where connections' events are announced, and how.
    pub webhooks: crate::webhooks::WebhookSettings,
}
