//! OpenID Connect in Google's dialect: the keys id_tokens are signed with, and the id_tokens.

pub mod id_token;
mod jws;
pub mod keys;

pub use id_token::{IdTokenClaims, Invalid, SignError, Signer, Subject, Verified, at_hash};
pub use keys::{
    KeyError, drop_retired_keys, ensure_signing_key, generate_signing_key, rotate_signing_key,
};
