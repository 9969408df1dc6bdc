//! Apps (OAuth clients) in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{ClientId, Timestamp, TokenDigest, UserId};
use refreshd_store::{App, Apps, NewApp, StoreError};
use tokio_postgres::types::ToSql;

use super::rows::{APP_COLUMNS, app_of, find_app_in};
use super::{Params, PostgresStore, conflict_or_unavailable, query, query_opt};

#[async_trait]
impl Apps for PostgresStore {
    async fn create_app(&self, app: NewApp, now: Timestamp) -> Result<App, StoreError> {
        let sql = format!(
            "INSERT INTO apps AS a (client_id, name, kind, redirect_uri, secret_digest,
                 expiring_tokens, device_flow, owner_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             RETURNING {APP_COLUMNS}"
        );
        let row = query_opt(
            &self.client().await?,
            &sql,
            &[
                &app.client_id.as_str(),
                &app.name,
                &app.kind.as_str(),
                &app.redirect_uri,
                &app.secret_digest.as_bytes().as_slice(),
                &app.expiring_tokens,
                &app.device_flow,
                &app.owner_id.map(|owner| owner.0),
                &now.secs(),
            ],
        )
        .await
        .map_err(|e| conflict_or_unavailable(e, "app"))?;
        app_of(&row.ok_or_else(|| StoreError::Corrupt("no app returned by its insert".into()))?)
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {APP_COLUMNS} FROM apps a ORDER BY a.id");
        query(&client, &sql, &[])
            .await?
            .iter()
            .map(app_of)
            .collect()
    }

    async fn find_app(&self, client_id: &ClientId) -> Result<Option<App>, StoreError> {
        find_app_in(&self.client().await?, client_id.as_str()).await
    }

    async fn list_owned_apps(&self, owner_id: UserId) -> Result<Vec<App>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.owner_id = $1 ORDER BY a.id");
        query(&client, &sql, &[&owner_id.0])
            .await?
            .iter()
            .map(app_of)
            .collect()
    }

    async fn set_redirect_uris(
        &self,
        client_id: &ClientId,
        uris: &str,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "redirect_uri", &uris, now).await
    }

    async fn set_expiring_tokens(
        &self,
        client_id: &ClientId,
        expiring: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "expiring_tokens", &expiring, now)
            .await
    }

    async fn set_device_flow(
        &self,
        client_id: &ClientId,
        enabled: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "device_flow", &enabled, now)
            .await
    }

    async fn set_client_secret(
        &self,
        client_id: &ClientId,
        secret: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        let digest = secret.as_bytes().as_slice();
        self.update_app(client_id, "secret_digest", &digest, now)
            .await
    }

    async fn set_owner(
        &self,
        client_id: &ClientId,
        owner_id: UserId,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "owner_id", &owner_id.0, now)
            .await
    }
}

impl PostgresStore {
    /// Sets one column of an app; `column` is always a literal of this file.
    async fn update_app(
        &self,
        client_id: &ClientId,
        column: &'static str,
        value: &(dyn ToSql + Sync),
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        let sql = format!(
            "UPDATE apps AS a SET {column} = $2, updated_at = $3 WHERE client_id = $1
             RETURNING {APP_COLUMNS}"
        );
        let params: &Params = &[&client_id.as_str(), value, &now.secs()];
        let row = query_opt(&self.client().await?, &sql, params).await?;
        row.as_ref().map(app_of).transpose()
    }
}
