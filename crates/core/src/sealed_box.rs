//! The box refreshd seals things in for storage: XChaCha20-Poly1305 under a key derived
//! (HKDF-SHA256) with a purpose's own info (from the master key, or for the replays from the
//! refresh token), a fresh random nonce per box, stored as nonce ‖ ciphertext ‖ tag, with
//! associated data naming what the box holds.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::random;

pub(crate) const NONCE_LEN: usize = 24;

/// Seals and opens boxes under one purpose's key. Holds the key; has no `Debug`.
#[derive(Clone)]
pub(crate) struct Boxes {
    cipher: XChaCha20Poly1305,
}

impl Boxes {
    /// The key of the purpose whose HKDF info is `info`, derived from `master_key`.
    pub(crate) fn derived(master_key: &[u8; 32], info: &[u8]) -> Self {
        Self::derived_from(None, master_key, info)
    }

    /// The key HKDF-SHA256 derives from `secret` with `salt` and `info`.
    pub(crate) fn derived_from(salt: Option<&[u8]>, secret: &[u8], info: &[u8]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(salt, secret)
            .expand(info, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// `message` sealed with `aad`, under a fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], message: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = random::bytes();
        let payload = Payload { msg: message, aad };
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(XNonce::from_slice(&nonce), payload)
                .expect("XChaCha20-Poly1305 encryption of a short message cannot fail"),
        );
        out
    }

    /// The message, or `None` when `sealed` was sealed with other associated data, under
    /// another key, or was tampered with or cut short.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        self.cipher.decrypt(XNonce::from_slice(nonce), payload).ok()
    }
}
