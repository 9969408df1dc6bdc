//! Users' approvals of apps in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::Timestamp;

use super::pairs::revoke_user_grant;
use super::rows::{APP_COLUMNS, app_of};
use super::{PostgresStore, execute, query, query_opt};
use crate::{Consent, Consents, StoreError};

#[async_trait]
impl Consents for PostgresStore {
    async fn consented_scopes(
        &self,
        app_id: i64,
        user_id: i64,
    ) -> Result<Option<String>, StoreError> {
        let sql = "SELECT scopes FROM consents WHERE app_id = $1 AND user_id = $2";
        let row = query_opt(&self.client().await?, sql, &[&app_id, &user_id]).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn record_consent(
        &self,
        app_id: i64,
        user_id: i64,
        scopes: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO consents (app_id, user_id, scopes, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (app_id, user_id)
             DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
            &[&app_id, &user_id, &scopes, &now.secs()],
        )
        .await?;
        Ok(())
    }

    async fn list_consents(&self, user_id: i64) -> Result<Vec<Consent>, StoreError> {
        let sql = format!(
            "SELECT c.scopes, c.created_at, c.updated_at, {APP_COLUMNS}
             FROM consents c JOIN apps a ON a.id = c.app_id
             WHERE c.user_id = $1 ORDER BY c.updated_at DESC, a.id DESC"
        );
        query(&self.client().await?, &sql, &[&user_id])
            .await?
            .iter()
            .map(|row| {
                Ok(Consent {
                    app: app_of(row)?,
                    scopes: row.try_get("scopes")?,
                    created_at: Timestamp(row.try_get("created_at")?),
                    updated_at: Timestamp(row.try_get("updated_at")?),
                })
            })
            .collect()
    }

    async fn revoke_consent(
        &self,
        app_id: i64,
        user_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let revoked = revoke_user_grant(&tx, app_id, user_id, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}
