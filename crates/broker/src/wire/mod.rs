//! The broker's API as it travels: what callers send and what the broker answers. The
//! handlers take and return these types, and `/openapi.json` is derived from them. Errors
//! travel in `crate::error`'s envelope.

mod connections;
mod reply;
mod request;

pub use connections::{
    ConnectionDeleted, ConnectionPage, ConnectionSaved, ConnectionShown, ConnectionView,
    CreateConnection, Provider, TokenReply, scope_text,
};
pub use reply::{
    AuthUser, DatabaseHealth, Exchanged, GithubRefreshed, GoogleRefreshed, HealthReport,
    HealthStatus, LoggedIn, UpstreamHealth, UpstreamsHealth,
};
pub use request::{Body, CodeRequest, GoogleExchangeRequest, GoogleLoginRequest, RefreshRequest};
