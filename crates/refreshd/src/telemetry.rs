//! Logging. Nothing refreshd logs carries a token or a secret: request spans record the path
//! only, never the query string, headers or body.
//!
//! Security events (a refresh token reused, a client secret reset, a sign-in locked, an app
//! authorized or revoked) are logged with the target `refreshd::audit` and a stable `event`
//! name; with `log_format = "json"` each is one JSON object on a line of its own.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        // Colours only for a person at a terminal, never in a file or a pipe.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
