//! Signed-in browser sessions in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest, UserId};
use refreshd_store::{StoreError, User, WebSessions};

use super::rows::{USER_COLUMNS, user_of};
use super::{PostgresStore, execute, query_opt};

#[async_trait]
impl WebSessions for PostgresStore {
    async fn create_web_session(
        &self,
        digest: TokenDigest,
        user_id: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO web_sessions (digest, user_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &digest.as_bytes().as_slice(),
                &user_id.0,
                &expires_at.secs(),
                &now.secs(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn find_web_session(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM web_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.digest = $1 AND s.expires_at > $2"
        );
        let digest = digest.as_bytes().as_slice();
        let row = query_opt(&self.client().await?, &sql, &[&digest, &now.secs()]).await?;
        row.as_ref().map(user_of).transpose()
    }

    async fn delete_web_session(&self, digest: TokenDigest) -> Result<(), StoreError> {
        let digest = digest.as_bytes().as_slice();
        let sql = "DELETE FROM web_sessions WHERE digest = $1";
        execute(&self.client().await?, sql, &[&digest]).await?;
        Ok(())
    }
}
