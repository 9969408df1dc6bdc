//! Sealing a rotation's answer under a key only the holder of the old refresh token can derive,
//! so the grace replay can return the same pair without storing a token in clear.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::random;

const INFO: &[u8] = b"refreshd grace replay v1";
const NONCE_LEN: usize = 24;

fn cipher(refresh_token: &str) -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, refresh_token.as_bytes())
        .expand(INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    XChaCha20Poly1305::new(&key.into())
}

/// Encrypts `plaintext` under a key derived (HKDF-SHA256) from `refresh_token`; the output is
/// nonce ‖ ciphertext.
pub fn seal(refresh_token: &str, plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = random::bytes();
    let payload = Payload {
        msg: plaintext,
        aad: INFO,
    };
    let mut out = nonce.to_vec();
    out.extend(
        cipher(refresh_token)
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encryption of a short message cannot fail"),
    );
    out
}

/// The plaintext, or `None` when the token is not the one it was sealed under or the blob was
/// tampered with.
pub fn unseal(refresh_token: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let payload = Payload {
        msg: ciphertext,
        aad: INFO,
    };
    cipher(refresh_token)
        .decrypt(XNonce::from_slice(nonce), payload)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_only_with_the_same_token() {
        let sealed = seal("ghr_one", b"the answer");
        assert!(!sealed.windows(10).any(|w| w == b"the answer"));
        assert_eq!(
            unseal("ghr_one", &sealed).as_deref(),
            Some(&b"the answer"[..])
        );
        assert_eq!(unseal("ghr_two", &sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(unseal("ghr_one", &tampered), None);
        assert_eq!(unseal("ghr_one", b"short"), None);
    }
}
