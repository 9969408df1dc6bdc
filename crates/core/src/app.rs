//! OAuth applications: their kind, client id and client secret.

use crate::digest::TokenDigest;
use crate::random;
use crate::token::TokenKind;

/// GitHub has two kinds of OAuth clients; they differ in the prefix of non-expiring tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    GithubApp,
    OAuthApp,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GithubApp => "github-app",
            Self::OAuthApp => "oauth-app",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "github-app" => Some(Self::GithubApp),
            "oauth-app" => Some(Self::OAuthApp),
            _ => None,
        }
    }

    /// Expiring tokens are always `ghu_`; a non-expiring one is `gho_` for an OAuth App.
    pub fn access_token_kind(self, expiring: bool) -> TokenKind {
        match (self, expiring) {
            (Self::OAuthApp, false) => TokenKind::OAuth,
            _ => TokenKind::UserToServer,
        }
    }

    fn client_id_prefix(self) -> &'static str {
        match self {
            Self::GithubApp => "Iv23li",
            Self::OAuthApp => "Ov23li",
        }
    }
}

/// A public client identifier, 20 characters as GitHub's are (`Iv23li…` / `Ov23li…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate(kind: AppKind) -> Self {
        Self(format!("{}{}", kind.client_id_prefix(), random::base62(14)))
    }

    /// Client ids are looked up, not trusted: any short printable string may be presented.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= 100 && raw.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client secret in clear: exists only between generation and the one answer that shows it,
/// or between a request and its digest.
pub struct ClientSecret(String);

impl ClientSecret {
    /// 40 lowercase hex characters, as GitHub's client secrets.
    pub fn generate() -> Self {
        Self(random::hex(40))
    }

    pub fn from_presented(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_secrets_look_like_githubs() {
        let id = ClientId::generate(AppKind::GithubApp);
        assert_eq!(id.as_str().len(), 20);
        assert!(id.as_str().starts_with("Iv23li"));
        let secret = ClientSecret::generate();
        assert_eq!(secret.expose().len(), 40);
        assert!(secret.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(format!("{secret:?}"), "ClientSecret(redacted)");
    }

    #[test]
    fn token_kind_follows_app_kind_and_expiry() {
        assert_eq!(AppKind::OAuthApp.access_token_kind(false), TokenKind::OAuth);
        assert_eq!(
            AppKind::OAuthApp.access_token_kind(true),
            TokenKind::UserToServer
        );
        assert_eq!(
            AppKind::GithubApp.access_token_kind(false),
            TokenKind::UserToServer
        );
    }
}
