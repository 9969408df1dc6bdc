//! Users' approvals of apps in SQLite.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, UserId};
use refreshd_store::{Consent, Consents, StoreError};
use rusqlite::{OptionalExtension, params};

use super::pairs::revoke_user_grant;
use super::rows::{APP_COLUMNS, app_of};
use super::{SqliteStore, unavailable};

#[async_trait]
impl Consents for SqliteStore {
    async fn consented_scopes(
        &self,
        app_id: AppId,
        user_id: UserId,
    ) -> Result<Option<Scopes>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached("SELECT scopes FROM consents WHERE app_id = ?1 AND user_id = ?2")
                .and_then(|mut s| {
                    s.query_row([app_id.0, user_id.0], |r| r.get::<_, String>(0))
                        .optional()
                })
                .map(|scopes| scopes.as_deref().map(Scopes::parse))
                .map_err(unavailable)
        })
    }

    async fn record_consent(
        &self,
        app_id: AppId,
        user_id: UserId,
        scopes: &Scopes,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let scopes = scopes.to_github();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO consents (app_id, user_id, scopes, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (app_id, user_id)
                     DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                    params![app_id.0, user_id.0, scopes, now.secs()],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_consents(&self, user_id: UserId) -> Result<Vec<Consent>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT c.scopes, c.created_at, c.updated_at, {APP_COLUMNS}
                     FROM consents c JOIN apps a ON a.id = c.app_id
                     WHERE c.user_id = ?1 ORDER BY c.updated_at DESC, a.id DESC"
                ))
                .map_err(unavailable)?;
            let consents = s
                .query_map([user_id.0], |row| {
                    Ok(Consent {
                        app: app_of(row)?,
                        scopes: Scopes::parse(&row.get::<_, String>("scopes")?),
                        created_at: Timestamp(row.get("created_at")?),
                        updated_at: Timestamp(row.get("updated_at")?),
                    })
                })
                .map_err(unavailable)?;
            consents.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn revoke_consent(
        &self,
        app_id: AppId,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| revoke_user_grant(conn, app_id, user_id, now))
            .await
    }
}
