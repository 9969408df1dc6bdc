//! Connections: a user's grant with GitHub or Google that refreshd holds and keeps fresh, known
//! to the backend that made it only by its id.

use crate::random;

/// The longest connection id a caller may choose.
pub const CONNECTION_ID_MAX_LEN: usize = 128;

/// A connection's id: 1 to 128 URL-safe characters (ASCII letters, digits, `-`, `.`, `_`,
/// `~`), so it goes into a URL path as it is. `.` and `..` are refused: in a path they mean
/// something else. Ids are compared byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    /// The id, if `raw` follows the rules above.
    pub fn parse(raw: &str) -> Option<Self> {
        is_valid_id(raw).then(|| Self(raw.to_owned()))
    }

    /// A new id for a caller that named none: `conn_` and 24 base62 characters.
    pub fn generate() -> Self {
        Self(format!("conn_{}", random::base62(24)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ConnectionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn is_valid_id(raw: &str) -> bool {
    (1..=CONNECTION_ID_MAX_LEN).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        && raw != "."
        && raw != ".."
}

/// Who a connection's grant is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    Github,
    Google,
}

impl Upstream {
    pub const ALL: [Upstream; 2] = [Upstream::Github, Upstream::Google];

    /// The name in the API, the CLI and the database: `github` or `google`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Google => "google",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == raw)
    }
}

/// Whether a connection can give out working tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// Its last refresh (or its creation) worked.
    Live,
    /// The upstream refused the grant (revoked, expired): no refresh is tried again until the
    /// connection is replaced.
    Broken,
    /// A refresh failed for a reason that may pass (the upstream down, a timeout): the next
    /// attempt waits for the connection's `retry_after`.
    BackingOff,
}

impl ConnectionStatus {
    pub const ALL: [ConnectionStatus; 3] = [
        ConnectionStatus::Live,
        ConnectionStatus::Broken,
        ConnectionStatus::BackingOff,
    ];

    /// The name in the API, the CLI and the database: `live`, `broken` or `backing_off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Broken => "broken",
            Self::BackingOff => "backing_off",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_at_most_128_characters() {
        for good in ["u", "user-42", "A.b_c~d", "..x", &"a".repeat(128)] {
            assert_eq!(ConnectionId::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a%20",
            "ü",
            "a?b",
            &"a".repeat(129),
        ] {
            assert_eq!(ConnectionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_parse_and_differ() {
        let (one, two) = (ConnectionId::generate(), ConnectionId::generate());
        assert_ne!(one, two);
        assert_eq!(ConnectionId::parse(one.as_str()), Some(one.clone()));
        assert!(one.as_str().starts_with("conn_") && one.as_str().len() == 29);
    }

    #[test]
    fn names_round_trip() {
        for upstream in Upstream::ALL {
            assert_eq!(Upstream::parse(upstream.as_str()), Some(upstream));
        }
        for status in ConnectionStatus::ALL {
            assert_eq!(ConnectionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Upstream::parse("GitHub"), None);
        assert_eq!(ConnectionStatus::parse("dead"), None);
    }
}
