//! refreshd's provider: an OAuth authorization server speaking GitHub's dialect.

mod client_auth;
mod code;
pub mod github;
pub mod google;
mod grants;
mod issue;
mod params;
mod redirect;
mod state;
pub mod web;

/// Bodies larger than this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub use issue::{IssueError, TokenAnswer, issue_code, issue_family};
pub use redirect::{RedirectUriError, redirect_uris};
pub use state::Provider;
pub use web::TrustedProxies;

/// The OpenAPI description of both dialects' endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        github::token::access_token,
        github::applications::check,
        github::applications::reset,
        github::applications::delete_token,
        github::applications::delete_grant,
        github::user::me,
        google::token::token,
        google::tokens::revoke,
        google::tokens::tokeninfo,
        google::tokens::userinfo,
    ),
    components(schemas(
        TokenAnswer,
        github::TokenRequest,
        github::applications::AccessTokenBody
    ))
)]
pub struct ProviderApi;
