//! The id_token signing keys: RSA-2048, generated on first start and shared by every instance
//! on one database, the private key stored only sealed under the master key.
//!
//! `rsa` only generates a key (ring cannot); ring reads it back (which checks it) and gives
//! the JWK's modulus and exponent; rcgen self-signs the certificate `/oauth2/v1/certs` serves.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use refreshd_core::{KeySealer, Timestamp};
use refreshd_store::{SigningKey, Store, StoreError};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};

use super::id_token::ID_TOKEN_SECS;

/// The modulus size of every key generated.
const RSA_BITS: usize = 2048;
/// A certificate is valid from an hour before its key was made (clocks a little apart) …
const CERT_NOT_BEFORE_SECS: i64 = 3600;
/// … for a year; neither Google library checks these dates, but they are sane.
const CERT_VALIDITY_SECS: i64 = 366 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    /// A key in the database that this instance's master key does not open: refreshd must
    /// not start (nor make a key of its own) with a master key other than the one the keys
    /// were sealed under.
    #[error(
        "signing key {kid} does not open under this master key: every instance on one \
         database must share the master key the keys were sealed with"
    )]
    Unseal { kid: String },
    #[error("another rotation added signing key generation {generation} at the same time")]
    Concurrent { generation: i64 },
}

fn generation_failed(e: impl std::fmt::Display) -> KeyError {
    KeyError::Generate(e.to_string())
}

/// A new RSA-2048 key of `generation`, sealed under `sealer`, made `now` and signing from
/// `signs_from`. CPU-bound (a fraction of a second): call it off the async threads.
pub fn generate_signing_key(
    sealer: &KeySealer,
    generation: i64,
    now: Timestamp,
    signs_from: Timestamp,
) -> Result<SigningKey, KeyError> {
    let private =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).map_err(generation_failed)?;
    let pkcs8 = private.to_pkcs8_der().map_err(generation_failed)?;
    let pkcs8 = pkcs8.as_bytes();

    let ring_key = ring::rsa::KeyPair::from_pkcs8(pkcs8).map_err(generation_failed)?;
    let public: ring::rsa::PublicKeyComponents<Vec<u8>> = ring_key.public().into();

    let cert_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(generation_failed)?;
    let spki = private
        .to_public_key()
        .to_public_key_der()
        .map_err(generation_failed)?;
    let kid = kid_of(spki.as_bytes());
    let cert_pem = self_signed_pem(&cert_key, &kid, now)?;

    Ok(SigningKey {
        generation,
        sealed_private_key: sealer.seal(&kid, pkcs8),
        kid,
        cert_pem,
        jwk_n: URL_SAFE_NO_PAD.encode(&public.n),
        jwk_e: URL_SAFE_NO_PAD.encode(&public.e),
        created_at: now,
        signs_from,
    })
}

/// 40 hex characters, like Google's: the first 20 bytes of SHA-256 of the public key's SPKI.
fn kid_of(spki_der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn self_signed_pem(key: &rcgen::KeyPair, kid: &str, now: Timestamp) -> Result<String, KeyError> {
    let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(secs).map_err(generation_failed);
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("refreshd id_token key {kid}"),
    );
    params.not_before = at(now.secs() - CERT_NOT_BEFORE_SECS)?;
    params.not_after = at(now.secs() + CERT_VALIDITY_SECS)?;
    let cert = params.self_signed(key).map_err(generation_failed)?;
    Ok(cert.pem())
}

/// Makes sure a signing key exists, generating the first one (signing at once) when the
/// database has none, and that every key kept opens under `sealer`. Instances starting at once
/// on one database may each generate a key: the store keeps exactly one as generation 1, and
/// every instance then reads that one.
pub async fn ensure_signing_key(
    store: &dyn Store,
    sealer: &KeySealer,
    now: Timestamp,
) -> Result<Vec<SigningKey>, KeyError> {
    let mut keys = store.signing_keys().await?;
    if keys.is_empty() {
        let generating = sealer.clone();
        let key =
            tokio::task::spawn_blocking(move || generate_signing_key(&generating, 1, now, now))
                .await
                .map_err(generation_failed)??;
        if store.add_signing_key(&key).await? {
            tracing::info!(kid = %key.kid, "generated the first id_token signing key");
        }
        keys = store.signing_keys().await?;
    }
    for key in &keys {
        if sealer.unseal(&key.kid, &key.sealed_private_key).is_none() {
            return Err(KeyError::Unseal {
                kid: key.kid.clone(),
            });
        }
    }
    Ok(keys)
}

/// `refreshd signing-key rotate`: adds the next generation, published at once. It signs once
/// every verifier's cached key set holds it (`rules::signing_keys::signs_from`), or from `now`
/// when `immediately` (tests, a compromised key). Then drops the keys no longer published. Refuses when a kept key does not open under `sealer` (the new key would be
/// sealed under a master key the others do not share).
pub async fn rotate_signing_key(
    store: &dyn Store,
    sealer: &KeySealer,
    now: Timestamp,
    immediately: bool,
) -> Result<SigningKey, KeyError> {
    let keys = store.signing_keys().await?;
    for key in &keys {
        if sealer.unseal(&key.kid, &key.sealed_private_key).is_none() {
            return Err(KeyError::Unseal {
                kid: key.kid.clone(),
            });
        }
    }
    let generation = keys.iter().map(|k| k.generation).max().unwrap_or(0) + 1;
    let signs_from = refreshd_store::rules::signing_keys::signs_from(
        &keys,
        now,
        crate::google::certs::CERTS_MAX_AGE_SECS,
        immediately,
    );
    let generating = sealer.clone();
    let key = tokio::task::spawn_blocking(move || {
        generate_signing_key(&generating, generation, now, signs_from)
    })
    .await
    .map_err(generation_failed)??;
    if !store.add_signing_key(&key).await? {
        return Err(KeyError::Concurrent { generation });
    }
    tracing::info!(kid = %key.kid, generation, signs_from = signs_from.secs(), "rotated the id_token signing key");
    drop_retired_keys(store, now).await?;
    Ok(key)
}

/// Drops the keys that are neither published nor signing at `now` (by rotation and the sweep);
/// how many went.
pub async fn drop_retired_keys(store: &dyn Store, now: Timestamp) -> Result<u64, StoreError> {
    let keys = store.signing_keys().await?;
    match refreshd_store::rules::signing_keys::drop_before(&keys, now, ID_TOKEN_SECS) {
        Some(generation) => store.drop_signing_keys_before(generation).await,
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_sealed_ring_readable_and_described_consistently() {
        let sealer = KeySealer::new(&[3; 32]);
        let now = Timestamp(1_800_000_000);
        let key = generate_signing_key(&sealer, 1, now, now).unwrap();
        assert_eq!(key.kid.len(), 40);
        assert!(key.kid.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key.jwk_e, "AQAB");
        let pkcs8 = sealer.unseal(&key.kid, &key.sealed_private_key).unwrap();
        let ring_key = ring::rsa::KeyPair::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(ring_key.public().modulus_len(), 256);
        let public: ring::rsa::PublicKeyComponents<Vec<u8>> = ring_key.public().into();
        assert_eq!(URL_SAFE_NO_PAD.encode(&public.n), key.jwk_n);
        assert!(key.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(key.cert_pem.ends_with("-----END CERTIFICATE-----\n"));
        assert_eq!(
            KeySealer::new(&[4; 32]).unseal(&key.kid, &key.sealed_private_key),
            None
        );
    }
}
