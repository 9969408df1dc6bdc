//! Who may call the broker, in PostgreSQL: API keys and login sessions.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use refreshd_store::{ApiKey, Callers, Session, StoreError};
use tokio_postgres::Row;

use super::{Column, PostgresStore, execute, query, query_opt};

const API_KEY_COLUMNS: &str = "id, name, last_four, created_at, revoked_at";

fn api_key_of(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.col("id")?,
        name: row.col("name")?,
        last_four: row.col("last_four")?,
        created_at: Timestamp(row.col("created_at")?),
        revoked_at: row.col::<_, Option<i64>>("revoked_at")?.map(Timestamp),
    })
}

#[async_trait]
impl Callers for PostgresStore {
    async fn create_api_key(
        &self,
        name: &str,
        digest: TokenDigest,
        last_four: &str,
        now: Timestamp,
    ) -> Result<ApiKey, StoreError> {
        let sql = format!(
            "INSERT INTO api_keys (name, digest, last_four, created_at) VALUES ($1, $2, $3, $4)
             RETURNING {API_KEY_COLUMNS}"
        );
        let row = query_opt(
            &self.client().await?,
            &sql,
            &[
                &name,
                &digest.as_bytes().as_slice(),
                &last_four,
                &now.secs(),
            ],
        )
        .await?;
        api_key_of(&row.ok_or_else(|| StoreError::Corrupt("no key returned by its insert".into()))?)
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id");
        let rows = query(&self.client().await?, &sql, &[]).await?;
        rows.iter().map(api_key_of).collect()
    }

    async fn revoke_api_key(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let changed = execute(
            &self.client().await?,
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn find_api_key(&self, digest: TokenDigest) -> Result<Option<ApiKey>, StoreError> {
        // Built once: this lookup runs on every broker call.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE digest = $1 AND revoked_at IS NULL"
            )
        });
        let row = query_opt(
            &self.client().await?,
            &SQL,
            &[&digest.as_bytes().as_slice()],
        )
        .await?;
        row.as_ref().map(api_key_of).transpose()
    }

    async fn create_session(
        &self,
        digest: TokenDigest,
        session: Session,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO sessions (digest, provider, subject, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &digest.as_bytes().as_slice(),
                &session.provider,
                &session.subject,
                &now.secs(),
                &session.expires_at.secs(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn find_session(
        &self,
        digest: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let row = query_opt(
            &self.client().await?,
            "SELECT provider, subject, expires_at FROM sessions WHERE digest = $1 AND expires_at > $2",
            &[&digest.as_bytes().as_slice(), &now.secs()],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Session {
            provider: row.col(0)?,
            subject: row.col(1)?,
            expires_at: Timestamp(row.col(2)?),
        }))
    }
}
