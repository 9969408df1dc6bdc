//! The broker's API keys, sessions and replay vault in SQLite.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, unavailable};
use crate::{ApiKey, Callers, Leases, Replays, Session, StoreError};

fn api_key_of(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get("id")?,
        name: row.get("name")?,
        last_four: row.get("last_four")?,
        created_at: Timestamp(row.get("created_at")?),
        revoked_at: row.get::<_, Option<i64>>("revoked_at")?.map(Timestamp),
    })
}

#[async_trait]
impl Callers for SqliteStore {
    async fn create_api_key(
        &self,
        name: &str,
        digest: TokenDigest,
        last_four: &str,
        now: Timestamp,
    ) -> Result<ApiKey, StoreError> {
        let (name, last_four) = (name.to_owned(), last_four.to_owned());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO api_keys (name, digest, last_four, created_at) VALUES (?1, ?2, ?3, ?4)
                     RETURNING id, name, last_four, created_at, revoked_at",
                )
                .and_then(|mut s| s.query_row(params![name, digest.as_bytes(), last_four, now.secs()], api_key_of))
                .map_err(unavailable)
            })
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT id, name, last_four, created_at, revoked_at FROM api_keys ORDER BY id",
                )
                .map_err(unavailable)?;
            let keys = s.query_map([], api_key_of).map_err(unavailable)?;
            keys.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn revoke_api_key(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![id, now.secs()]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn find_api_key(&self, digest: TokenDigest) -> Result<Option<ApiKey>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached(
                "SELECT id, name, last_four, created_at, revoked_at FROM api_keys
                 WHERE digest = ?1 AND revoked_at IS NULL",
            )
            .and_then(|mut s| s.query_row([digest.as_bytes()], api_key_of).optional())
            .map_err(unavailable)
        })
    }

    async fn create_session(
        &self,
        digest: TokenDigest,
        session: Session,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO sessions (digest, provider, subject, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        digest.as_bytes(),
                        session.provider,
                        session.subject,
                        now.secs(),
                        session.expires_at.secs()
                    ])
                })
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    async fn find_session(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached(
                "SELECT provider, subject, expires_at FROM sessions WHERE digest = ?1 AND expires_at > ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![digest.as_bytes(), now.secs()], |r| {
                    Ok(Session { provider: r.get(0)?, subject: r.get(1)?, expires_at: Timestamp(r.get(2)?) })
                })
                .optional()
            })
            .map_err(unavailable)
        })
    }
}

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
