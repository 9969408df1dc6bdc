//! The broker's leases in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{Leases, StoreError};

use super::{PostgresStore, execute, query_opt};

#[async_trait]
impl Leases for PostgresStore {
    async fn take_lease(
        &self,
        key: TokenDigest,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let taken = execute(
            &self.client().await?,
            "INSERT INTO leases (key, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.expires_at <= $4",
            &[
                &key.as_bytes().as_slice(),
                &holder.as_slice(),
                &until.secs(),
                &now.secs(),
            ],
        )
        .await?;
        Ok(taken > 0)
    }

    async fn lease_free(&self, key: TokenDigest, now: Timestamp) -> Result<bool, StoreError> {
        let held = query_opt(
            &self.client().await?,
            "SELECT 1 FROM leases WHERE key = $1 AND expires_at > $2",
            &[&key.as_bytes().as_slice(), &now.secs()],
        )
        .await?;
        Ok(held.is_none())
    }

    async fn renew_lease(
        &self,
        key: TokenDigest,
        holder: [u8; 16],
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let renewed = execute(
            &self.client().await?,
            "UPDATE leases SET expires_at = $3 WHERE key = $1 AND holder = $2",
            &[
                &key.as_bytes().as_slice(),
                &holder.as_slice(),
                &until.secs(),
            ],
        )
        .await?;
        Ok(renewed > 0)
    }

    async fn release_lease(&self, key: TokenDigest, holder: [u8; 16]) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "DELETE FROM leases WHERE key = $1 AND holder = $2",
            &[&key.as_bytes().as_slice(), &holder.as_slice()],
        )
        .await?;
        Ok(())
    }
}
