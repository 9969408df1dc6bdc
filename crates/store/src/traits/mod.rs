//! The storage traits, one concern each; `crate::Store` is all of them.

pub mod access_tokens;
pub mod accounts;
pub mod broker;
pub mod codes;
pub mod connections;
pub mod consents;
pub mod device_codes;
pub mod families;
pub mod housekeeping;
pub mod sign_in_attempts;
pub mod signing_keys;
pub mod web_sessions;
pub mod webhooks;
