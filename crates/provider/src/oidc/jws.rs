//! jsonwebtoken's cryptography, done by ring: a `CryptoProvider` for RS256 alone.
//!
//! jsonwebtoken (10 and later) ships two backends: `rust_crypto`, which signs with `rsa`
//! (RUSTSEC-2023-0071, Marvin), and `aws_lc_rs` (a C build and a second crypto library). ring
//! is in the tree already (rustls): it signs (`RSA_PKCS1_SHA256`, constant time) and verifies
//! (`RSA_PKCS1_2048_8192_SHA256`). jsonwebtoken assembles and parses the JWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};

/// Installs the ring provider as jsonwebtoken's process default, once. Call it before
/// `encode` or `decode` (jsonwebtoken panics without a provider). Another provider installed
/// first by someone else stays: installing ours then fails, and is ignored.
pub(crate) fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = RING.install_default();
    });
}

static RING: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Signing keys read by ring, by the SHA-256 of their PKCS#8 bytes. Reading a key validates
/// it, which costs about as much as a signature, so each is read once per process. A database
/// holds a few keys at a time; the map is emptied when rotations have left 16 in it, so a
/// retired key's private half stays in this process's memory until then (as it stays in the
/// database until the sweep drops it).
type KeyPairs = Mutex<HashMap<[u8; 32], Arc<ring::rsa::KeyPair>>>;

/// The PKCS#8 RSA key `pkcs8`, read by ring (once per process).
pub(crate) fn key_pair(
    pkcs8: &[u8],
) -> std::result::Result<Arc<ring::rsa::KeyPair>, ring::error::KeyRejected> {
    static READ: OnceLock<KeyPairs> = OnceLock::new();
    let read = READ.get_or_init(KeyPairs::default);
    let mut digest = [0; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, pkcs8).as_ref());
    // A panic elsewhere while the lock was held cannot leave the map half-written.
    let cached = read
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&digest)
        .cloned();
    if let Some(pair) = cached {
        return Ok(pair);
    }
    let pair = Arc::new(ring::rsa::KeyPair::from_pkcs8(pkcs8)?);
    let mut read = read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if read.len() >= 16 {
        read.clear();
    }
    read.insert(digest, pair.clone());
    Ok(pair)
}

/// An RS256 signer of a PKCS#8 RSA private key (the key `EncodingKey::from_rsa_der` was
/// given: PKCS#8, as the signing keys are stored).
fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = key_pair(key.as_bytes()).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(RingSigner(pair)))
}

struct RingSigner(Arc<ring::rsa::KeyPair>);

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut sig = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                msg,
                &mut sig,
            )
            .map_err(|_| signature::Error::new())?;
        Ok(sig)
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// An RS256 verifier of an RSA public key: its JWK components (`from_rsa_components`), or its
/// PKCS#1 `RSAPublicKey` DER (`from_rsa_der`).
fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let public = match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => RingPublicKey::Components {
            n: n.clone(),
            e: e.clone(),
        },
        DecodingKeyKind::SecretOrDer(der) => RingPublicKey::Der(der.clone()),
    };
    Ok(Box::new(public))
}

enum RingPublicKey {
    Components { n: Vec<u8>, e: Vec<u8> },
    Der(Vec<u8>),
}

impl signature::Verifier<Vec<u8>> for RingPublicKey {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let params = &ring::signature::RSA_PKCS1_2048_8192_SHA256;
        match self {
            Self::Components { n, e } => {
                ring::signature::RsaPublicKeyComponents { n, e }.verify(params, msg, sig)
            }
            Self::Der(der) => ring::signature::UnparsedPublicKey::new(params, der).verify(msg, sig),
        }
        .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingPublicKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refreshd_core::{KeySealer, Timestamp};
    use serde_json::{Value, json};

    #[test]
    fn signs_and_verifies_rs256_through_ring() {
        install();
        let sealer = KeySealer::new(&[5; 32]);
        let now = Timestamp(1_800_000_000);
        let key = crate::oidc::generate_signing_key(&sealer, 1, now, now).unwrap();
        let pkcs8 = sealer.unseal(&key.kid, &key.sealed_private_key).unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let claims = json!({ "sub": "1", "exp": 4_000_000_000_i64 });
        let jwt =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&pkcs8)).unwrap();

        let public = DecodingKey::from_rsa_components(&key.jwk_n, &key.jwk_e).unwrap();
        let validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        let data = jsonwebtoken::decode::<Value>(&jwt, &public, &validation).unwrap();
        assert_eq!(data.claims, claims);
        assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));

        // One bit off in the signature: refused.
        let mut tampered = jwt.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let refused = jsonwebtoken::decode::<Value>(&tampered, &public, &validation);
        assert_eq!(
            refused.unwrap_err().kind(),
            &ErrorKind::InvalidSignature,
            "a tampered signature verifies"
        );

        // HS256 is not signed here.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"secret").unwrap(),
        );
        assert!(hs.is_err());
    }
}
