//! Sealing a rotation's answer under a key only the holder of the old refresh token can derive,
//! so the grace replay can return the same pair without storing a token in clear.

use crate::sealed_box::Boxes;

const INFO: &[u8] = b"refreshd grace replay v1";

/// Where a sealed answer is used; each purpose derives different keys from the same token.
#[derive(Clone, Copy)]
pub enum Purpose<'a> {
    /// The provider's grace replay: keyed by the old refresh token alone.
    GraceReplay,
    /// The broker's idempotent replay: keyed by the server's master key and the old token.
    BrokerReplay { master_key: &'a [u8; 32] },
}

/// The boxes of `purpose` for `refresh_token`.
fn boxes(purpose: Purpose<'_>, refresh_token: &str) -> Boxes {
    let (salt, info): (Option<&[u8]>, &[u8]) = match purpose {
        Purpose::GraceReplay => (None, INFO),
        Purpose::BrokerReplay { master_key } => (Some(master_key), b"refreshd broker replay v1"),
    };
    Boxes::derived_from(salt, refresh_token.as_bytes(), info)
}

/// Encrypts `plaintext` under a key derived (HKDF-SHA256) from `refresh_token` (and, for the
/// broker, the master key); the output is nonce ‖ ciphertext.
pub fn seal(purpose: Purpose<'_>, refresh_token: &str, plaintext: &[u8]) -> Vec<u8> {
    boxes(purpose, refresh_token).seal(INFO, plaintext)
}

/// The plaintext, or `None` when the token is not the one it was sealed under or the blob was
/// tampered with.
pub fn unseal(purpose: Purpose<'_>, refresh_token: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    boxes(purpose, refresh_token).open(INFO, sealed)
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
