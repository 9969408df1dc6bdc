//! The broker's replay vault in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{Replays, StoreError};

use super::{Column, PostgresStore, execute, query_opt};

#[async_trait]
impl Replays for PostgresStore {
    async fn put_replay(
        &self,
        lookup: TokenDigest,
        sealed: Vec<u8>,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO replays (lookup, sealed, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (lookup) DO UPDATE SET sealed = excluded.sealed, expires_at = excluded.expires_at",
            &[&lookup.as_bytes().as_slice(), &sealed, &expires_at.secs()],
        )
        .await?;
        Ok(())
    }

    async fn get_replay(
        &self,
        lookup: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = query_opt(
            &self.client().await?,
            "SELECT sealed FROM replays WHERE lookup = $1 AND expires_at > $2",
            &[&lookup.as_bytes().as_slice(), &now.secs()],
        )
        .await?;
        Ok(row.map(|r| r.col(0)).transpose()?)
    }
}
