//! GitHub's token format: prefix, base62 random part, 6-character CRC32 checksum.

use crate::digest::TokenDigest;
use crate::random::{self, BASE62};

const CHECKSUM_LEN: usize = 6;

/// What a token is for, told by its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `ghu_`: a GitHub App's user-to-server token.
    UserToServer,
    /// `gho_`: an OAuth App's token.
    OAuth,
    /// `ghr_`: a refresh token.
    Refresh,
    /// `ya29.`: a Google-dialect access token.
    GoogleAccess,
    /// `1//`: a Google-dialect refresh token (it does not rotate).
    GoogleRefresh,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::UserToServer => "ghu_",
            Self::OAuth => "gho_",
            Self::Refresh => "ghr_",
            Self::GoogleAccess => "ya29.",
            Self::GoogleRefresh => "1//",
        }
    }

    fn is_refresh(self) -> bool {
        matches!(self, Self::Refresh | Self::GoogleRefresh)
    }

    /// Length of the random part: access tokens are 40 characters, refresh tokens 80.
    fn random_len(self) -> usize {
        match self {
            Self::UserToServer | Self::OAuth => 30,
            Self::Refresh => 70,
            // Google's tokens are longer and opaque; refreshd's carry the same checksum.
            Self::GoogleAccess => 150,
            Self::GoogleRefresh => 96,
        }
    }

    fn total_len(self) -> usize {
        self.prefix().len() + self.random_len() + CHECKSUM_LEN
    }

    fn of_prefix(token: &str) -> Option<Self> {
        [
            Self::UserToServer,
            Self::OAuth,
            Self::Refresh,
            Self::GoogleAccess,
            Self::GoogleRefresh,
        ]
        .into_iter()
        .find(|kind| token.starts_with(kind.prefix()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenFormatError {
    #[error("unknown token prefix")]
    Prefix,
    #[error("wrong token length")]
    Length,
    #[error("token contains characters outside base62")]
    Alphabet,
    #[error("token checksum does not match")]
    Checksum,
}

/// CRC32 (IEEE) of the random part in base62, big-endian, left-padded with `0` to 6 characters.
pub fn checksum(random_part: &str) -> String {
    let mut n = crc32fast::hash(random_part.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

fn generate(kind: TokenKind) -> String {
    let random_part = random::base62(kind.random_len());
    format!("{}{random_part}{}", kind.prefix(), checksum(&random_part))
}

/// Checks prefix, length, alphabet and checksum; no storage is consulted.
fn check(raw: &str, allowed: &[TokenKind]) -> Result<TokenKind, TokenFormatError> {
    let kind = TokenKind::of_prefix(raw)
        .filter(|k| allowed.contains(k))
        .ok_or(TokenFormatError::Prefix)?;
    if raw.len() != kind.total_len() {
        return Err(TokenFormatError::Length);
    }
    let body = &raw[kind.prefix().len()..];
    if !body.bytes().all(|b| BASE62.contains(&b)) {
        return Err(TokenFormatError::Alphabet);
    }
    let (random_part, sum) = body.split_at(kind.random_len());
    if checksum(random_part) != sum {
        return Err(TokenFormatError::Checksum);
    }
    Ok(kind)
}

macro_rules! secret_token {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name {
            value: String,
            kind: TokenKind,
        }

        impl $name {
            pub fn kind(&self) -> TokenKind {
                self.kind
            }

            /// The token itself, for the one answer that hands it to its owner.
            pub fn expose(&self) -> &str {
                &self.value
            }

            pub fn digest(&self) -> TokenDigest {
                TokenDigest::of(&self.value)
            }

            pub fn last_eight(&self) -> &str {
                &self.value[self.value.len() - 8..]
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "({}…redacted)"),
                    self.kind.prefix()
                )
            }
        }
    };
}

secret_token!(
    AccessToken,
    "An access token (`ghu_`, `gho_` or `ya29.`), checked at parse time."
);
secret_token!(
    RefreshToken,
    "A refresh token (`ghr_` or `1//`), checked at parse time."
);

const ACCESS_KINDS: &[TokenKind] = &[
    TokenKind::UserToServer,
    TokenKind::OAuth,
    TokenKind::GoogleAccess,
];
const REFRESH_KINDS: &[TokenKind] = &[TokenKind::Refresh, TokenKind::GoogleRefresh];

impl AccessToken {
    pub fn generate(kind: TokenKind) -> Self {
        debug_assert!(!kind.is_refresh());
        Self {
            value: generate(kind),
            kind,
        }
    }

    pub fn parse(raw: &str) -> Result<Self, TokenFormatError> {
        let kind = check(raw, ACCESS_KINDS)?;
        Ok(Self {
            value: raw.to_owned(),
            kind,
        })
    }
}

impl RefreshToken {
    pub fn generate(kind: TokenKind) -> Self {
        debug_assert!(kind.is_refresh());
        Self {
            value: generate(kind),
            kind,
        }
    }

    pub fn parse(raw: &str) -> Result<Self, TokenFormatError> {
        let kind = check(raw, REFRESH_KINDS)?;
        Ok(Self {
            value: raw.to_owned(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently with Python's `zlib.crc32` and a base62 encoder.
    #[test]
    fn checksum_vectors() {
        assert_eq!(checksum("abcdefghijklmnopqrstuvwxyz0123"), "2LolCm"); // 0x806d9a54
        assert_eq!(checksum("000000000000000000000000000000"), "2C8GjS"); // 0x77e5db82
        assert_eq!(checksum("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"), "3EAd4B"); // 0xb04c74cf
        assert_eq!(checksum("x00000000000000000000000000001"), "0ai21s"); // 0x2055035c, padded
        assert_eq!(
            checksum("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01234567"),
            "3PdKhU"
        );
    }

    #[test]
    fn parses_a_known_good_token() {
        let t = AccessToken::parse("ghu_abcdefghijklmnopqrstuvwxyz01232LolCm").unwrap();
        assert_eq!(t.kind(), TokenKind::UserToServer);
        assert_eq!(t.last_eight(), "232LolCm");
    }

    #[test]
    fn generated_tokens_have_githubs_lengths_and_verify() {
        for kind in [TokenKind::UserToServer, TokenKind::OAuth] {
            let t = AccessToken::generate(kind);
            assert_eq!(t.expose().len(), 40);
            assert!(t.expose().starts_with(kind.prefix()));
            assert_eq!(AccessToken::parse(t.expose()).unwrap(), t);
        }
        let r = RefreshToken::generate(TokenKind::Refresh);
        assert_eq!(r.expose().len(), 80);
        assert_eq!(RefreshToken::parse(r.expose()).unwrap(), r);
        let g = AccessToken::generate(TokenKind::GoogleAccess);
        assert!(g.expose().starts_with("ya29.") && g.expose().len() == 161);
        assert_eq!(AccessToken::parse(g.expose()).unwrap(), g);
        let gr = RefreshToken::generate(TokenKind::GoogleRefresh);
        assert!(gr.expose().starts_with("1//") && gr.expose().len() == 105);
        assert_eq!(RefreshToken::parse(gr.expose()).unwrap(), gr);
    }

    #[test]
    fn rejects_bad_tokens_before_any_lookup() {
        let good = "ghu_abcdefghijklmnopqrstuvwxyz01232LolCm";
        assert_eq!(
            AccessToken::parse(&good.replace("2LolCm", "2LolCn")),
            Err(TokenFormatError::Checksum)
        );
        assert_eq!(
            AccessToken::parse(&good.replace("ghu_", "ghx_")),
            Err(TokenFormatError::Prefix)
        );
        assert_eq!(
            AccessToken::parse(&good[..39]),
            Err(TokenFormatError::Length)
        );
        assert_eq!(
            AccessToken::parse(&good.replace('a', "-")),
            Err(TokenFormatError::Alphabet)
        );
        assert_eq!(RefreshToken::parse(good), Err(TokenFormatError::Prefix));
        assert_eq!(
            AccessToken::parse(RefreshToken::generate(TokenKind::Refresh).expose()),
            Err(TokenFormatError::Prefix)
        );
        assert_eq!(AccessToken::parse("ghu_é"), Err(TokenFormatError::Length));
        assert_eq!(AccessToken::parse(""), Err(TokenFormatError::Prefix));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = RefreshToken::generate(TokenKind::GoogleRefresh);
        assert!(!format!("{t:?}").contains(&t.expose()[4..]));
    }
}
