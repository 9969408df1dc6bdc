//! Apps (OAuth clients) in SQLite.

use async_trait::async_trait;
use refreshd_core::{ClientId, Timestamp, TokenDigest, UserId};
use refreshd_store::{App, Apps, NewApp, StoreError};
use rusqlite::params;
use rusqlite::types::Value;

use super::rows::{APP_COLUMNS, app_of, find_app_in};
use super::{SqliteStore, conflict_or_unavailable, unavailable};

#[async_trait]
impl Apps for SqliteStore {
    async fn create_app(&self, app: NewApp, now: Timestamp) -> Result<App, StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO apps (client_id, name, kind, redirect_uri, secret_digest,
                         expiring_tokens, device_flow, owner_id, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                    params![
                        app.client_id.as_str(),
                        app.name,
                        app.kind.as_str(),
                        app.redirect_uri,
                        app.secret_digest.as_bytes(),
                        app.expiring_tokens,
                        app.device_flow,
                        app.owner_id.map(|owner| owner.0),
                        now.secs()
                    ],
                )
                .map_err(|e| conflict_or_unavailable(e, "app"))?;
                find_app_in(conn, app.client_id.as_str())?
                    .ok_or_else(|| StoreError::Corrupt("app vanished after insert".into()))
            })
            .await
    }

    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps a ORDER BY a.id"))
                .map_err(unavailable)?;
            let apps = s.query_map([], app_of).map_err(unavailable)?;
            apps.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn find_app(&self, client_id: &ClientId) -> Result<Option<App>, StoreError> {
        self.readers
            .read(|conn| find_app_in(conn, client_id.as_str()))
    }

    async fn list_owned_apps(&self, owner_id: UserId) -> Result<Vec<App>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {APP_COLUMNS} FROM apps a WHERE a.owner_id = ?1 ORDER BY a.id"
                ))
                .map_err(unavailable)?;
            let apps = s.query_map([owner_id.0], app_of).map_err(unavailable)?;
            apps.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn set_redirect_uris(
        &self,
        client_id: &ClientId,
        uris: &str,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "redirect_uri", Value::from(uris.to_owned()), now)
            .await
    }

    async fn set_expiring_tokens(
        &self,
        client_id: &ClientId,
        expiring: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "expiring_tokens", Value::from(expiring), now)
            .await
    }

    async fn set_device_flow(
        &self,
        client_id: &ClientId,
        enabled: bool,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "device_flow", Value::from(enabled), now)
            .await
    }

    async fn set_client_secret(
        &self,
        client_id: &ClientId,
        secret: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        let digest = Value::Blob(secret.as_bytes().to_vec());
        self.update_app(client_id, "secret_digest", digest, now)
            .await
    }

    async fn set_owner(
        &self,
        client_id: &ClientId,
        owner_id: UserId,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        self.update_app(client_id, "owner_id", Value::from(owner_id.0), now)
            .await
    }
}

impl SqliteStore {
    /// Sets one column of an app; `column` is always a literal of this file.
    async fn update_app(
        &self,
        client_id: &ClientId,
        column: &'static str,
        value: Value,
        now: Timestamp,
    ) -> Result<Option<App>, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.writer
            .write(move |conn| {
                let sql =
                    format!("UPDATE apps SET {column} = ?2, updated_at = ?3 WHERE client_id = ?1");
                conn.execute(&sql, params![client_id, value, now.secs()])
                    .map_err(unavailable)?;
                find_app_in(conn, &client_id)
            })
            .await
    }
}
