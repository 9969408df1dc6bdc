//! refreshd's provider: an OAuth authorization server speaking GitHub's dialect.

mod api_doc;
pub mod apps;
mod client_auth;
mod code;
pub mod device;
pub mod github;
pub mod google;
mod grants;
mod issue;
pub mod oidc;
mod params;
mod redirect;
mod scopes;
mod state;
pub mod web;

/// Bodies larger than this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub use api_doc::ProviderApi;
pub use issue::{
    CodeTerms, IssueError, MAX_NONCE_LEN, TokenAnswer, issue_code, issue_code_with, issue_family,
};
pub use redirect::{RedirectUriError, redirect_uris};
pub use state::{GOOGLE_ISSUER, Oidc, Provider};
pub use web::TrustedProxies;
