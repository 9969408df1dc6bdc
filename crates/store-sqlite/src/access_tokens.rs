//! Access tokens in SQLite: looked up on every API call, replaced and revoked.

use async_trait::async_trait;
use refreshd_core::{AppId, Timestamp, TokenDigest};
use refreshd_store::{AccessTokens, Authorization, NewAccess, StoreError};
use rusqlite::params;

use super::pairs::revoke_user_grant;
use super::rows::find_authorization_in;
use super::{SqliteStore, unavailable};

/// The condition that a `token_pairs` row belongs to a live family of the app bound to `?2`.
const OF_LIVE_FAMILY: &str = "EXISTS (SELECT 1 FROM families f WHERE f.id = token_pairs.family_id AND f.app_id = ?2 AND f.revoked_at IS NULL)";

#[async_trait]
impl AccessTokens for SqliteStore {
    async fn find_authorization(
        &self,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        self.readers
            .read(|conn| find_authorization_in(conn, &access, now))
    }

    async fn reset_access(
        &self,
        app_id: AppId,
        old: TokenDigest,
        new: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        self.writer
            .write(move |conn| {
                let sql = format!(
                    "UPDATE token_pairs
                     SET access_digest = ?3, access_last_eight = ?4, access_expires_at = ?5, updated_at = ?6,
                         replay_sealed = NULL,
                         dead_after = CASE
                             WHEN ?5 IS NULL THEN NULL
                             WHEN refresh_digest IS NULL THEN ?5
                             WHEN refresh_expires_at IS NULL THEN NULL
                             ELSE max(?5, refresh_expires_at) END
                     WHERE access_digest = ?1 AND state = 0
                       AND (access_expires_at IS NULL OR access_expires_at > ?6) AND {OF_LIVE_FAMILY}"
                );
                let changed = conn
                    .prepare_cached(&sql)
                    .and_then(|mut s| {
                        s.execute(params![
                            old.as_bytes(),
                            app_id.0,
                            new.digest.as_bytes(),
                            new.last_eight,
                            new.expires_at.map(Timestamp::secs),
                            now.secs()
                        ])
                    })
                    .map_err(unavailable)?;
                if changed == 0 {
                    return Ok(None);
                }
                find_authorization_in(conn, &new.digest, now)
            })
            .await
    }

    async fn revoke_access(
        &self,
        app_id: AppId,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                let sql = format!(
                    "UPDATE token_pairs SET state = 2, replay_sealed = NULL, updated_at = ?3
                     WHERE access_digest = ?1 AND state = 0
                       AND (access_expires_at IS NULL OR access_expires_at > ?3) AND {OF_LIVE_FAMILY}"
                );
                conn.prepare_cached(&sql)
                    .and_then(|mut s| s.execute(params![access.as_bytes(), app_id.0, now.secs()]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    async fn revoke_grant(
        &self,
        app_id: AppId,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                let Some(auth) = find_authorization_in(conn, &access, now)? else {
                    return Ok(false);
                };
                if auth.app.id != app_id {
                    return Ok(false);
                }
                revoke_user_grant(conn, app_id, auth.user.id, now)?;
                Ok(true)
            })
            .await
    }
}
