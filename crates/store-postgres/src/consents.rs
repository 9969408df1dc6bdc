//! Users' approvals of apps in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, UserId};
use refreshd_store::{Consent, Consents, StoreError};

use super::pairs::revoke_user_grant;
use super::rows::{APP_COLUMNS, app_of};
use super::{Column, Pg, PostgresStore, execute, query, query_opt};

#[async_trait]
impl Consents for PostgresStore {
    async fn consented_scopes(
        &self,
        app_id: AppId,
        user_id: UserId,
    ) -> Result<Option<Scopes>, StoreError> {
        let sql = "SELECT scopes FROM consents WHERE app_id = $1 AND user_id = $2";
        let row = query_opt(&self.client().await?, sql, &[&app_id.0, &user_id.0]).await?;
        let scopes: Option<&str> = row.as_ref().map(|r| r.col(0)).transpose()?;
        Ok(scopes.map(Scopes::parse))
    }

    async fn record_consent(
        &self,
        app_id: AppId,
        user_id: UserId,
        scopes: &Scopes,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO consents (app_id, user_id, scopes, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (app_id, user_id)
             DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
            &[&app_id.0, &user_id.0, &scopes.to_github(), &now.secs()],
        )
        .await?;
        Ok(())
    }

    async fn list_consents(&self, user_id: UserId) -> Result<Vec<Consent>, StoreError> {
        let sql = format!(
            "SELECT c.scopes, c.created_at, c.updated_at, {APP_COLUMNS}
             FROM consents c JOIN apps a ON a.id = c.app_id
             WHERE c.user_id = $1 ORDER BY c.updated_at DESC, a.id DESC"
        );
        query(&self.client().await?, &sql, &[&user_id.0])
            .await?
            .iter()
            .map(|row| {
                Ok(Consent {
                    app: app_of(row)?,
                    scopes: Scopes::parse(row.col::<_, &str>("scopes")?),
                    created_at: Timestamp(row.col("created_at")?),
                    updated_at: Timestamp(row.col("updated_at")?),
                })
            })
            .collect()
    }

    async fn revoke_consent(
        &self,
        app_id: AppId,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        let revoked = revoke_user_grant(&tx, app_id, user_id, now).await?;
        tx.commit().await.map_err(Pg)?;
        Ok(revoked)
    }
}
