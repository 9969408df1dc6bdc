//! The broker's replay vault in SQLite.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{Replays, StoreError};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, unavailable};

#[async_trait]
impl Replays for SqliteStore {
    async fn put_replay(
        &self,
        lookup: TokenDigest,
        sealed: Vec<u8>,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached("INSERT OR REPLACE INTO replays (lookup, sealed, expires_at) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![lookup.as_bytes(), sealed, expires_at.secs()]))
                    .map(drop)
                    .map_err(unavailable)
            })
            .await
    }

    async fn get_replay(
        &self,
        lookup: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached("SELECT sealed FROM replays WHERE lookup = ?1 AND expires_at > ?2")
                .and_then(|mut s| {
                    s.query_row(params![lookup.as_bytes(), now.secs()], |r| r.get(0))
                        .optional()
                })
                .map_err(unavailable)
        })
    }
}
