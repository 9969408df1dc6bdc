//! refreshd's provider: an OAuth authorization server speaking GitHub's dialect.

pub mod github;
mod issue;
mod state;

pub use issue::{IssueError, TokenAnswer, issue_code, issue_family};
pub use state::Provider;
