//! The provider's id_token signing keys, in SQLite.

use async_trait::async_trait;
use refreshd_core::{SealedKey, Timestamp};
use refreshd_store::{SigningKey, SigningKeys, StoreError};
use rusqlite::{Row, params};

use super::{SqliteStore, unavailable};

fn signing_key_of(row: &Row) -> rusqlite::Result<SigningKey> {
    Ok(SigningKey {
        generation: row.get("generation")?,
        kid: row.get("kid")?,
        sealed_private_key: SealedKey::from_stored(row.get("sealed_private_key")?),
        cert_pem: row.get("cert_pem")?,
        jwk_n: row.get("jwk_n")?,
        jwk_e: row.get("jwk_e")?,
        created_at: Timestamp(row.get("created_at")?),
        signs_from: Timestamp(row.get("signs_from")?),
    })
}

#[async_trait]
impl SigningKeys for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT generation, kid, sealed_private_key, cert_pem, jwk_n, jwk_e,
                            created_at, signs_from
                     FROM signing_keys ORDER BY generation",
                )
                .map_err(unavailable)?;
            let keys = s.query_map([], signing_key_of).map_err(unavailable)?;
            keys.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn add_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO signing_keys (generation, kid, sealed_private_key, cert_pem,
                                               jwk_n, jwk_e, created_at, signs_from)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (generation) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        key.generation,
                        key.kid,
                        key.sealed_private_key.as_bytes(),
                        key.cert_pem,
                        key.jwk_n,
                        key.jwk_e,
                        key.created_at.secs(),
                        key.signs_from.secs(),
                    ])
                })
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn drop_signing_keys_before(&self, generation: i64) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM signing_keys WHERE generation < ?1")
                    .and_then(|mut s| s.execute([generation]))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await
    }
}
