//! What every broker handler shares: storage, time, settings, the upstream HTTP client, the
//! replay vault, the single-flight table and the sealer of connections' tokens.

use std::sync::Arc;
use std::time::Duration;

use refreshd_core::{Clock, TokenSealer};
use refreshd_store::Store;
use secrecy::SecretString;

use crate::config::BrokerSettings;
use crate::flight::Flights;
use crate::master_key::MasterKey;
use crate::upstream::{Upstream, UpstreamClient};
use crate::vault::Vault;

#[derive(Clone)]
pub struct Broker(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: BrokerSettings,
    pub github: Option<UpstreamClient>,
    pub google: Option<UpstreamClient>,
    pub vault: Vault,
    pub flights: Flights,
    /// Seals connections' tokens under the master key.
    pub sealer: TokenSealer,
}

impl Broker {
    /// Reads client secrets from their files where configured so, and builds the one pooled
    /// HTTP client (rustls, no redirects followed) every upstream call shares.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: BrokerSettings,
        master_key: MasterKey,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .timeout(Duration::from_secs(settings.upstream_timeout_secs))
            .user_agent(concat!("refreshd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let github = UpstreamClient::configure(
            Upstream::Github,
            &http,
            settings.github.client_id.as_deref(),
            secret(
                &settings.github.client_secret,
                &settings.github.client_secret_file,
            )?,
        );
        let google = UpstreamClient::configure(
            Upstream::Google,
            &http,
            settings.google.client_id.as_deref(),
            secret(
                &settings.google.client_secret,
                &settings.google.client_secret_file,
            )?,
        );
        let sealer = TokenSealer::new(master_key.bytes());
        Ok(Self(Arc::new(Inner {
            store,
            clock,
            settings,
            github,
            google,
            vault: Vault::new(master_key),
            flights: Flights::default(),
            sealer,
        })))
    }

    pub(crate) fn upstream(&self, which: Upstream) -> Result<&UpstreamClient, crate::BrokerError> {
        match which {
            Upstream::Github => self.0.github.as_ref(),
            Upstream::Google => self.0.google.as_ref(),
        }
        .ok_or(crate::BrokerError::NotConfigured(which.name()))
    }
}

/// The secret itself, or the trimmed contents of its file.
fn secret(
    inline: &Option<SecretString>,
    file: &Option<std::path::PathBuf>,
) -> Result<Option<SecretString>, String> {
    match (inline, file) {
        (Some(secret), _) => Ok(Some(secret.clone())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| Some(SecretString::from(s.trim().to_owned())))
            .map_err(|e| format!("reading the client secret file {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}
