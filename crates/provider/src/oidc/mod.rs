//! OpenID Connect in Google's dialect: the keys id_tokens are signed with.

pub mod keys;

pub use keys::{KeyError, ensure_signing_key, generate_signing_key};
