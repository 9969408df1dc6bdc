//! Sealing the provider's signing keys for storage: XChaCha20-Poly1305 under a key derived from
//! the master key with its own HKDF info, bound to the key's `kid`, so a sealed private key
//! copied onto another key's row does not open.

use crate::sealed_box::Boxes;
#[cfg(test)]
use crate::sealed_box::NONCE_LEN;

/// The HKDF info of the signing-key key, and the start of every box's associated data; no
/// other purpose (`seal::Purpose`, `sealed_token`) derives with it.
const INFO: &[u8] = b"refreshd signing keys v1";

/// A private key as stored: nonce ‖ ciphertext ‖ tag. Only a `KeySealer` makes one from a key;
/// `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey(Vec<u8>);

impl SealedKey {
    /// A box as read back from storage.
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.len())
    }
}

/// Seals and opens signing keys under the key the master key derives for them (made once,
/// here). `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct KeySealer {
    boxes: Boxes,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(redacted)")
    }
}

impl KeySealer {
    /// The sealer whose key is HKDF-SHA256 of `master_key` with this purpose's own info.
    pub fn new(master_key: &[u8; 32]) -> Self {
        Self {
            boxes: Boxes::derived(master_key, INFO),
        }
    }

    /// `private_key` (PKCS#8 DER) sealed as the key `kid`, under a fresh random nonce.
    pub fn seal(&self, kid: &str, private_key: &[u8]) -> SealedKey {
        SealedKey(self.boxes.seal(&associated_data(kid), private_key))
    }

    /// The private key, or `None` when the box was sealed as another key, under another
    /// master key, or was tampered with.
    pub fn unseal(&self, kid: &str, sealed: &SealedKey) -> Option<Vec<u8>> {
        self.boxes.open(&associated_data(kid), &sealed.0)
    }
}

/// INFO ‖ 0 ‖ kid: unambiguous, as INFO holds no NUL.
fn associated_data(kid: &str) -> Vec<u8> {
    [INFO, b"\0", kid.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const SECRET: &[u8] = b"0\x82\x04\xbe pkcs8 private key bytes";

    #[test]
    fn round_trips_and_hides_the_key() {
        let sealer = KeySealer::new(&KEY);
        let sealed = sealer.seal("kid-1", SECRET);
        assert!(
            !sealed
                .as_bytes()
                .windows(8)
                .any(|w| SECRET.windows(8).any(|t| t == w))
        );
        assert_eq!(sealer.unseal("kid-1", &sealed).as_deref(), Some(SECRET));
        assert_ne!(
            sealed,
            sealer.seal("kid-1", SECRET),
            "every box has its own nonce"
        );
        assert_eq!(
            format!("{sealed:?}"),
            format!("SealedKey({} bytes)", sealed.as_bytes().len())
        );
        assert_eq!(format!("{sealer:?}"), "KeySealer(redacted)");
    }

    #[test]
    fn another_kid_or_master_key_does_not_open_it() {
        let sealed = KeySealer::new(&KEY).seal("kid-1", SECRET);
        assert_eq!(KeySealer::new(&KEY).unseal("kid-2", &sealed), None);
        assert_eq!(KeySealer::new(&KEY).unseal("kid-10", &sealed), None);
        assert_eq!(KeySealer::new(&[8; 32]).unseal("kid-1", &sealed), None);
    }

    #[test]
    fn a_box_of_another_purpose_does_not_open() {
        use crate::{ConnectionId, TokenRole, TokenSealer};
        let id = ConnectionId::parse("kid-1").unwrap();
        let token_box = TokenSealer::new(&KEY).seal(&id, TokenRole::Access, "secret");
        let as_key = SealedKey::from_stored(token_box.as_bytes().to_vec());
        assert_eq!(KeySealer::new(&KEY).unseal("kid-1", &as_key), None);
    }

    #[test]
    fn a_tampered_or_short_box_does_not_open() {
        let sealer = KeySealer::new(&KEY);
        let sealed = sealer.seal("k", SECRET);
        for at in [0, NONCE_LEN, sealed.as_bytes().len() - 1] {
            let mut bytes = sealed.as_bytes().to_vec();
            bytes[at] ^= 1;
            assert_eq!(
                sealer.unseal("k", &SealedKey::from_stored(bytes)),
                None,
                "{at}"
            );
        }
        assert_eq!(
            sealer.unseal("k", &SealedKey::from_stored(vec![0; NONCE_LEN - 1])),
            None
        );
    }
}
