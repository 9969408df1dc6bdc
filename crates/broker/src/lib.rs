//! refreshd's broker: the API backends call to refresh (and first obtain) their users' GitHub
//! and Google tokens. refreshd holds the OAuth client secrets, and makes sure concurrent
//! refreshes, retries and lost responses never burn a rotating refresh token.

mod api_doc;
mod auth;
mod config;
mod connections;
mod error;
mod flight;
mod health;
mod lease;
mod login;
mod master_key;
mod refresh;
mod state;
mod upstream;
mod vault;
mod webhooks;
mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use api_doc::BrokerApi;
pub use config::{BrokerSettings, GithubUpstream, GoogleUpstream};
pub use connections::refresher::Refresher;
pub use connections::{delete_connection, refresh_connection};
pub use error::BrokerError;
pub use master_key::{MasterKey, MasterKeyError};
pub use state::Broker;
pub use webhooks::deliverer::run as run_webhook_deliverer;
pub use webhooks::{
    DEFAULT_EVENTS, WebhookSecret, WebhookSettings, endpoint_shown, parse_endpoint,
};
pub use wire::ConnectionView;

/// A new API key: `rfd_` and 40 base62 characters from the OS CSPRNG.
pub fn new_api_key() -> String {
    format!(
        "{}{}",
        auth::API_KEY_PREFIX,
        refreshd_core::random::base62(40)
    )
}

/// Bodies larger than this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The broker's routes (Flashback's `/auth/...` API).
pub fn router(broker: Broker) -> Router {
    Router::new()
        .route("/auth/github", post(login::github))
        .route("/auth/github/refresh", post(refresh::github))
        .route("/auth/google", post(login::google))
        .route("/auth/google/exchange", post(login::google_exchange))
        .route("/auth/google/refresh", post(refresh::google))
        .route("/health", get(health::health))
        .route(
            "/connections",
            post(connections::create).get(connections::list),
        )
        .route(
            "/connections/{id}",
            get(connections::show).delete(connections::delete),
        )
        .route("/connections/{id}/token", get(connections::token))
        .route("/connections/{id}/refresh", post(connections::refresh))
        .method_not_allowed_fallback(|| async { BrokerError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(broker)
}
