//! The broker's leases in SQLite.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{Leases, StoreError};
use rusqlite::params;

use super::{SqliteStore, unavailable};

#[async_trait]
impl Leases for SqliteStore {
    async fn take_lease(
        &self,
        key: TokenDigest,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO leases (key, holder, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.expires_at <= ?4",
                )
                .and_then(|mut s| s.execute(params![key.as_bytes(), holder, until.secs(), now.secs()]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn lease_free(&self, key: TokenDigest, now: Timestamp) -> Result<bool, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM leases WHERE key = ?1 AND expires_at > ?2")
                .and_then(|mut s| s.exists(params![key.as_bytes(), now.secs()]))
                .map(|held| !held)
                .map_err(unavailable)
        })
    }

    async fn renew_lease(
        &self,
        key: TokenDigest,
        holder: [u8; 16],
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE leases SET expires_at = ?3 WHERE key = ?1 AND holder = ?2",
                )
                .and_then(|mut s| s.execute(params![key.as_bytes(), holder, until.secs()]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn release_lease(&self, key: TokenDigest, holder: [u8; 16]) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM leases WHERE key = ?1 AND holder = ?2")
                    .and_then(|mut s| s.execute(params![key.as_bytes(), holder]))
                    .map(drop)
                    .map_err(unavailable)
            })
            .await
    }
}
