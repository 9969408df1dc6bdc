//! The provider's id_token signing keys, in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{SealedKey, Timestamp};
use refreshd_store::{SigningKey, SigningKeys, StoreError};
use tokio_postgres::Row;

use super::{Column, PostgresStore, execute, query};

fn signing_key_of(row: &Row) -> Result<SigningKey, StoreError> {
    Ok(SigningKey {
        generation: row.col("generation")?,
        kid: row.col("kid")?,
        sealed_private_key: SealedKey::from_stored(row.col("sealed_private_key")?),
        cert_pem: row.col("cert_pem")?,
        jwk_n: row.col("jwk_n")?,
        jwk_e: row.col("jwk_e")?,
        created_at: Timestamp(row.col("created_at")?),
        signs_from: Timestamp(row.col("signs_from")?),
    })
}

#[async_trait]
impl SigningKeys for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows = query(
            &self.client().await?,
            "SELECT generation, kid, sealed_private_key, cert_pem, jwk_n, jwk_e, created_at,
                    signs_from
             FROM signing_keys ORDER BY generation",
            &[],
        )
        .await?;
        rows.iter().map(signing_key_of).collect()
    }

    async fn add_signing_key(&self, key: &SigningKey) -> Result<bool, StoreError> {
        let added = execute(
            &self.client().await?,
            "INSERT INTO signing_keys (generation, kid, sealed_private_key, cert_pem, jwk_n,
                                       jwk_e, created_at, signs_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (generation) DO NOTHING",
            &[
                &key.generation,
                &key.kid,
                &key.sealed_private_key.as_bytes(),
                &key.cert_pem,
                &key.jwk_n,
                &key.jwk_e,
                &key.created_at.secs(),
                &key.signs_from.secs(),
            ],
        )
        .await?;
        Ok(added > 0)
    }

    async fn drop_signing_keys_before(&self, generation: i64) -> Result<u64, StoreError> {
        Ok(execute(
            &self.client().await?,
            "DELETE FROM signing_keys WHERE generation < $1",
            &[&generation],
        )
        .await?)
    }
}
