//! refreshd's provider: an OAuth authorization server speaking GitHub's dialect.

mod client_auth;
mod code;
pub mod github;
pub mod google;
mod issue;
mod params;
mod state;

/// Bodies larger than this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub use issue::{IssueError, TokenAnswer, issue_code, issue_family};
pub use state::Provider;
