//! Sealing a connection's tokens for storage: XChaCha20-Poly1305 under a key derived from the
//! master key, bound to the connection's id and to which of its tokens it is, so a sealed
//! token copied to another connection (or into the other column) does not open.

use crate::connection::ConnectionId;
use crate::sealed_box::Boxes;
#[cfg(test)]
use crate::sealed_box::NONCE_LEN;

/// The HKDF info of the connection key, and the start of every box's associated data; no
/// other purpose (`seal::Purpose`) derives with it.
const INFO: &[u8] = b"refreshd connection tokens v1";

/// Which of a connection's tokens a box holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRole {
    Access,
    Refresh,
}

impl TokenRole {
    fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// A token as stored: nonce ‖ ciphertext ‖ tag. Only a `TokenSealer` makes one from a token;
/// `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedToken(Vec<u8>);

impl SealedToken {
    /// A box as read back from storage.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedToken({} bytes)", self.0.len())
    }
}

/// Seals and opens connections' tokens under the key the master key derives for them (made
/// once, here). `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct TokenSealer {
    boxes: Boxes,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer(redacted)")
    }
}

impl TokenSealer {
    /// The sealer whose key is HKDF-SHA256 of `master_key` with this purpose's own info.
    pub fn new(master_key: &[u8; 32]) -> Self {
        Self {
            boxes: Boxes::derived(master_key, INFO),
        }
    }

    /// `token` sealed for connection `id` as its `role` token, under a fresh random nonce.
    pub fn seal(&self, id: &ConnectionId, role: TokenRole, token: &str) -> SealedToken {
        SealedToken(
            self.boxes
                .seal(&associated_data(id, role), token.as_bytes()),
        )
    }

    /// The token, or `None` when the box was sealed for another connection or role, under
    /// another master key, or was tampered with.
    pub fn unseal(
        &self,
        id: &ConnectionId,
        role: TokenRole,
        sealed: &SealedToken,
    ) -> Option<String> {
        let token = self.boxes.open(&associated_data(id, role), &sealed.0)?;
        String::from_utf8(token).ok()
    }
}

/// INFO ‖ 0 ‖ role ‖ 0 ‖ id: unambiguous, as neither a role nor an id holds a NUL.
fn associated_data(id: &ConnectionId, role: TokenRole) -> Vec<u8> {
    [
        INFO,
        b"\0",
        role.as_str().as_bytes(),
        b"\0",
        id.as_str().as_bytes(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn id(raw: &str) -> ConnectionId {
        ConnectionId::parse(raw).unwrap()
    }

    #[test]
    fn round_trips_and_hides_the_token() {
        let sealer = TokenSealer::new(&KEY);
        let sealed = sealer.seal(&id("user-1"), TokenRole::Refresh, "ghr_secret_token");
        assert!(
            !sealed
                .as_bytes()
                .windows(8)
                .any(|w| "ghr_secret_token".as_bytes().windows(8).any(|t| t == w))
        );
        assert_eq!(
            sealer.unseal(&id("user-1"), TokenRole::Refresh, &sealed),
            Some("ghr_secret_token".to_owned())
        );
        let again = sealer.seal(&id("user-1"), TokenRole::Refresh, "ghr_secret_token");
        assert_ne!(sealed, again, "every box has its own nonce");
        assert_eq!(
            format!("{sealed:?}"),
            format!("SealedToken({} bytes)", sealed.as_bytes().len())
        );
        assert_eq!(format!("{sealer:?}"), "TokenSealer(redacted)");
    }

    #[test]
    fn another_connection_or_role_does_not_open_it() {
        let sealer = TokenSealer::new(&KEY);
        let sealed = sealer.seal(&id("user-1"), TokenRole::Refresh, "ghr_x");
        assert_eq!(
            sealer.unseal(&id("user-2"), TokenRole::Refresh, &sealed),
            None
        );
        assert_eq!(
            sealer.unseal(&id("user-10"), TokenRole::Refresh, &sealed),
            None
        );
        assert_eq!(
            sealer.unseal(&id("user-1"), TokenRole::Access, &sealed),
            None
        );
    }

    #[test]
    fn another_master_key_does_not_open_it() {
        let sealed = TokenSealer::new(&KEY).seal(&id("u"), TokenRole::Access, "ghu_x");
        assert_eq!(
            TokenSealer::new(&[8; 32]).unseal(&id("u"), TokenRole::Access, &sealed),
            None
        );
    }

    #[test]
    fn a_tampered_or_short_box_does_not_open() {
        let sealer = TokenSealer::new(&KEY);
        let sealed = sealer.seal(&id("u"), TokenRole::Access, "ghu_x");
        for at in [0, NONCE_LEN, sealed.as_bytes().len() - 1] {
            let mut bytes = sealed.as_bytes().to_vec();
            bytes[at] ^= 1;
            let tampered = SealedToken::from_stored(bytes);
            assert_eq!(
                sealer.unseal(&id("u"), TokenRole::Access, &tampered),
                None,
                "{at}"
            );
        }
        let short = SealedToken::from_stored(vec![0; NONCE_LEN - 1]);
        assert_eq!(sealer.unseal(&id("u"), TokenRole::Access, &short), None);
        let truncated = SealedToken::from_stored(sealed.as_bytes()[..NONCE_LEN + 3].to_vec());
        assert_eq!(sealer.unseal(&id("u"), TokenRole::Access, &truncated), None);
    }
}
