//! Sealing a rotation's answer under a key only the holder of the old refresh token can derive,
//! so the grace replay can return the same pair without storing a token in clear.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::random;

const INFO: &[u8] = b"refreshd grace replay v1";
const NONCE_LEN: usize = 24;

/// Where a sealed answer is used; each purpose derives different keys from the same token.
#[derive(Clone, Copy)]
pub enum Purpose<'a> {
    /// The provider's grace replay: keyed by the old refresh token alone.
    GraceReplay,
    /// The broker's idempotent replay: keyed by the server's master key and the old token.
    BrokerReplay { master_key: &'a [u8; 32] },
}

fn cipher(purpose: Purpose<'_>, refresh_token: &str) -> XChaCha20Poly1305 {
    let (salt, info): (Option<&[u8]>, &[u8]) = match purpose {
        Purpose::GraceReplay => (None, INFO),
        Purpose::BrokerReplay { master_key } => (Some(master_key), b"refreshd broker replay v1"),
    };
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(salt, refresh_token.as_bytes())
        .expand(info, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    XChaCha20Poly1305::new(&key.into())
}

/// Encrypts `plaintext` under a key derived (HKDF-SHA256) from `refresh_token` (and, for the
/// broker, the master key); the output is nonce ‖ ciphertext.
pub fn seal(purpose: Purpose<'_>, refresh_token: &str, plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random::bytes();
    let payload = Payload {
        msg: plaintext,
        aad: INFO,
    };
    let mut out = nonce.to_vec();
    out.extend(
        cipher(purpose, refresh_token)
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encryption of a short message cannot fail"),
    );
    out
}

/// The plaintext, or `None` when the token is not the one it was sealed under or the blob was
/// tampered with.
pub fn unseal(purpose: Purpose<'_>, refresh_token: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let payload = Payload {
        msg: ciphertext,
        aad: INFO,
    };
    cipher(purpose, refresh_token)
        .decrypt(XNonce::from_slice(nonce), payload)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_only_with_the_same_token() {
        let g = Purpose::GraceReplay;
        let sealed = seal(g, "ghr_one", b"the answer");
        assert!(!sealed.windows(10).any(|w| w == b"the answer"));
        assert_eq!(
            unseal(g, "ghr_one", &sealed).as_deref(),
            Some(&b"the answer"[..])
        );
        assert_eq!(unseal(g, "ghr_two", &sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(unseal(g, "ghr_one", &tampered), None);
        assert_eq!(unseal(g, "ghr_one", b"short"), None);
    }

    #[test]
    fn purposes_and_master_keys_do_not_share_keys() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let sealed = seal(Purpose::BrokerReplay { master_key: &k1 }, "ghr_one", b"x");
        assert_eq!(
            unseal(
                Purpose::BrokerReplay { master_key: &k1 },
                "ghr_one",
                &sealed
            )
            .as_deref(),
            Some(&b"x"[..])
        );
        assert_eq!(
            unseal(
                Purpose::BrokerReplay { master_key: &k2 },
                "ghr_one",
                &sealed
            ),
            None
        );
        assert_eq!(unseal(Purpose::GraceReplay, "ghr_one", &sealed), None);
    }
}
