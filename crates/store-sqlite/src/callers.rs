//! Who may call the broker, in SQLite: API keys and login sessions.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{ApiKey, Callers, Session, StoreError};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, unavailable};

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
