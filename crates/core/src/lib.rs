//! refreshd's domain: what a token is, how long things live, and the rules of rotation.
//! Pure: no I/O beyond the OS random source, no HTTP, no SQL.

pub mod app;
pub mod audit;
pub mod clock;
pub mod connection;
pub mod device;
pub mod digest;
pub mod ids;
pub mod lifetimes;
pub mod login;
pub mod password;
pub mod pkce;
pub mod random;
pub mod rotation;
pub mod scope;
pub mod seal;
mod sealed_box;
pub mod sealed_key;
pub mod sealed_token;
pub mod token;

pub use app::{AppKind, ClientId, ClientSecret, Dialect};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use connection::{ConnectionId, ConnectionStatus, Upstream};
pub use device::UserCode;
pub use digest::TokenDigest;
pub use ids::{AppId, FamilyId, UserId};
pub use lifetimes::Lifetimes;
pub use login::Login;
pub use rotation::{ReuseVerdict, RotatedPair};
pub use scope::Scopes;
pub use sealed_key::{KeySealer, SealedKey};
pub use sealed_token::{SealedToken, TokenRole, TokenSealer};
pub use token::{AccessToken, RefreshToken, TokenFormatError, TokenKind};
