//! Signed-in browser sessions in SQLite.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest, UserId};
use refreshd_store::{StoreError, User, WebSessions};
use rusqlite::{OptionalExtension, params};

use super::rows::{USER_COLUMNS, user_of};
use super::{SqliteStore, unavailable};

#[async_trait]
impl WebSessions for SqliteStore {
    async fn create_web_session(
        &self,
        digest: TokenDigest,
        user_id: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO web_sessions (digest, user_id, expires_at, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![digest.as_bytes(), user_id.0, expires_at.secs(), now.secs()],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    async fn find_web_session(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM web_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.digest = ?1 AND s.expires_at > ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![digest.as_bytes(), now.secs()], user_of)
                    .optional()
            })
            .map_err(unavailable)
        })
    }

    async fn delete_web_session(&self, digest: TokenDigest) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM web_sessions WHERE digest = ?1",
                    [digest.as_bytes()],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }
}
