//! The provider's pages in SQLite: web sessions, approvals, and an owner's view of tokens.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};
use rusqlite::{OptionalExtension, params};

use super::grants::revoke_user_grant;
use super::rows::{APP_COLUMNS, USER_COLUMNS, app_of, user_of};
use super::{SqliteStore, unavailable};
use crate::{ActiveToken, Consent, Pages, StoreError, User};

#[async_trait]
impl Pages for SqliteStore {
    async fn create_web_session(
        &self,
        digest: TokenDigest,
        user_id: i64,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO web_sessions (digest, user_id, expires_at, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![digest.as_bytes(), user_id, expires_at.secs(), now.secs()],
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

    async fn consented_scopes(
        &self,
        app_id: i64,
        user_id: i64,
    ) -> Result<Option<String>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached("SELECT scopes FROM consents WHERE app_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.query_row([app_id, user_id], |r| r.get(0)).optional())
                .map_err(unavailable)
        })
    }

    async fn record_consent(
        &self,
        app_id: i64,
        user_id: i64,
        scopes: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let scopes = scopes.to_owned();
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO consents (app_id, user_id, scopes, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (app_id, user_id)
                     DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                    params![app_id, user_id, scopes, now.secs()],
                )
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_consents(&self, user_id: i64) -> Result<Vec<Consent>, StoreError> {
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT c.scopes, c.created_at, c.updated_at, {APP_COLUMNS}
                     FROM consents c JOIN apps a ON a.id = c.app_id
                     WHERE c.user_id = ?1 ORDER BY c.updated_at DESC, a.id DESC"
                ))
                .map_err(unavailable)?;
            let consents = s
                .query_map([user_id], |row| {
                    Ok(Consent {
                        app: app_of(row)?,
                        scopes: row.get("scopes")?,
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
        app_id: i64,
        user_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| revoke_user_grant(conn, app_id, user_id, now))
            .await
    }

    async fn active_tokens(
        &self,
        app_id: i64,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ActiveToken>, StoreError> {
        self.readers.read(|conn| {
            // A family's newest live pair (a Google family keeps several live ones). The other
            // columns come from the row max() picks, as SQLite documents for bare columns.
            // The app's families come by `families_grant`, their live pairs by
            // `token_pairs_live_family`.
            let mut s = conn
                .prepare_cached(
                    "SELECT f.id, u.login, f.scopes, p.access_last_eight, f.created_at,
                            p.access_expires_at, max(p.id) AS newest
                     FROM token_pairs p
                     JOIN families f ON f.id = p.family_id
                     JOIN users u ON u.id = f.user_id
                     WHERE f.app_id = ?1 AND f.revoked_at IS NULL AND p.state = 0
                       AND (p.dead_after IS NULL OR p.dead_after > ?2)
                     GROUP BY f.id ORDER BY newest DESC LIMIT ?3",
                )
                .map_err(unavailable)?;
            let tokens = s
                .query_map(params![app_id, now.secs(), limit], |row| {
                    Ok(ActiveToken {
                        family_id: row.get(0)?,
                        login: row.get(1)?,
                        scopes: row.get(2)?,
                        access_last_eight: row.get(3)?,
                        created_at: Timestamp(row.get(4)?),
                        expires_at: row.get::<_, Option<i64>>(5)?.map(Timestamp),
                    })
                })
                .map_err(unavailable)?;
            tokens.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn revoke_family(
        &self,
        app_id: i64,
        family_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE families SET revoked_at = ?3
                     WHERE id = ?2 AND app_id = ?1 AND revoked_at IS NULL",
                    params![app_id, family_id, now.secs()],
                )
                .map(|changed| changed > 0)
                .map_err(unavailable)
            })
            .await
    }
}
