//! OAuth applications: their kind (and so their dialect), client id and client secret.

use crate::digest::TokenDigest;
use crate::random;
use crate::token::TokenKind;

/// Which provider's wire format an app speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Github,
    Google,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Google => "google",
        }
    }
}

/// GitHub has two kinds of OAuth clients, which differ in the prefix of non-expiring tokens;
/// Google has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    GithubApp,
    OAuthApp,
    GoogleClient,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GithubApp => "github-app",
            Self::OAuthApp => "oauth-app",
            Self::GoogleClient => "google-client",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "github-app" => Some(Self::GithubApp),
            "oauth-app" => Some(Self::OAuthApp),
            "google-client" => Some(Self::GoogleClient),
            _ => None,
        }
    }

    pub fn dialect(self) -> Dialect {
        match self {
            Self::GithubApp | Self::OAuthApp => Dialect::Github,
            Self::GoogleClient => Dialect::Google,
        }
    }

    /// Expiring GitHub tokens are always `ghu_`; a non-expiring one is `gho_` for an OAuth App.
    /// Google's are `ya29.`.
    pub fn access_token_kind(self, expiring: bool) -> TokenKind {
        match (self, expiring) {
            (Self::GoogleClient, _) => TokenKind::GoogleAccess,
            (Self::OAuthApp, false) => TokenKind::OAuth,
            _ => TokenKind::UserToServer,
        }
    }

    pub fn refresh_token_kind(self) -> TokenKind {
        match self {
            Self::GoogleClient => TokenKind::GoogleRefresh,
            _ => TokenKind::Refresh,
        }
    }
}

/// A public client identifier: 20 characters as GitHub's are (`Iv23li…` / `Ov23li…`), or
/// Google's `NNNNNNNNNNNN-….apps.googleusercontent.com`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate(kind: AppKind) -> Self {
        Self(match kind {
            AppKind::GithubApp => format!("Iv23li{}", random::base62(14)),
            AppKind::OAuthApp => format!("Ov23li{}", random::base62(14)),
            AppKind::GoogleClient => format!(
                "{}-{}.apps.googleusercontent.com",
                random::string_from(b"0123456789", 12),
                random::string_from(b"0123456789abcdefghijklmnopqrstuvwxyz", 32)
            ),
        })
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
    /// 40 lowercase hex characters as GitHub's, or `GOCSPX-` and 28 more as Google's.
    pub fn generate(kind: AppKind) -> Self {
        match kind.dialect() {
            Dialect::Github => Self(random::hex(40)),
            Dialect::Google => Self(format!("GOCSPX-{}", random::base62(28))),
        }
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
        let secret = ClientSecret::generate(AppKind::OAuthApp);
        assert_eq!(secret.expose().len(), 40);
        assert!(secret.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(format!("{secret:?}"), "ClientSecret(redacted)");
    }

    #[test]
    fn google_clients_look_like_googles() {
        let id = ClientId::generate(AppKind::GoogleClient);
        assert!(id.as_str().ends_with(".apps.googleusercontent.com"), "{id}");
        assert!(ClientId::parse(id.as_str()).is_some());
        assert!(
            ClientSecret::generate(AppKind::GoogleClient)
                .expose()
                .starts_with("GOCSPX-")
        );
        assert_eq!(AppKind::GoogleClient.dialect(), Dialect::Google);
        assert_eq!(
            AppKind::GoogleClient.access_token_kind(true),
            TokenKind::GoogleAccess
        );
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
