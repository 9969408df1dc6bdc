//! One typed configuration: defaults, then a TOML file, then `REFRESHD_*`, then flags.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use refreshd_core::Lifetimes;
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// `sqlite://PATH`.
    pub database_url: String,
    pub listen: String,
    /// Where clients reach refreshd; `http://{listen}` if unset.
    pub public_url: Option<String>,
    /// A `tracing` filter, e.g. `info` or `refreshd=debug`.
    pub log: String,
    pub lifetimes: Lifetimes,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://refreshd.db".into(),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            log: "info".into(),
            lifetimes: Lifetimes::default(),
        }
    }
}

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
            .merge(Env::prefixed("REFRESHD_").split("__").ignore(&["config"]))
            .merge(Serialized::defaults(flags))
            .extract::<Self>()
            .map_err(Box::new)?
            .validated()
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
        if l.grace_window_secs < 0 {
            return Err(Box::new(figment::Error::from(format!(
                "lifetimes.grace_window_secs must be 0 or more, not {}",
                l.grace_window_secs
            ))));
        }
        Ok(self)
    }

    /// The public URL without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}
