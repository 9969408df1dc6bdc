//! How long codes, tokens and the rotation grace window last.

use serde::{Deserialize, Serialize};

/// Lifetimes in seconds. The defaults are GitHub's for expiring user-to-server tokens: user tokens 8 hours, refresh
/// tokens 6 months, authorization codes 10 minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifetimes {
    pub access_token_secs: i64,
    pub refresh_token_secs: i64,
    pub code_secs: i64,
    /// How long after a rotation the immediately previous refresh token may be presented again
    /// to receive the same successor pair. 0 disables the grace replay.
    pub grace_window_secs: i64,
    /// Google-dialect access tokens (Google's own: 3599 seconds).
    pub google_access_token_secs: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_token_secs: 28_800,
            refresh_token_secs: 15_811_200,
            code_secs: 600,
            grace_window_secs: 10,
            google_access_token_secs: 3599,
        }
    }
}
