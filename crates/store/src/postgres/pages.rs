//! The provider's pages in PostgreSQL: web sessions, approvals, and an owner's view of tokens.

use async_trait::async_trait;
use refreshd_core::{Timestamp, TokenDigest};

use super::grants::revoke_user_grant;
use super::rows::{APP_COLUMNS, USER_COLUMNS, app_of, user_of};
use super::{PostgresStore, execute, query, query_opt};
use crate::{ActiveToken, Consent, Pages, StoreError, User};

#[async_trait]
impl Pages for PostgresStore {
    async fn create_web_session(
        &self,
        digest: TokenDigest,
        user_id: i64,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO web_sessions (digest, user_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &digest.as_bytes().as_slice(),
                &user_id,
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

    async fn active_tokens(
        &self,
        app_id: i64,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ActiveToken>, StoreError> {
        // A family's newest live pair (a Google family keeps several live ones). The app's
        // families come by `families_grant`, their live pairs by `token_pairs_live_family`.
        let sql = "SELECT * FROM (
                       SELECT DISTINCT ON (f.id) f.id, u.login, f.scopes, p.access_last_eight,
                              f.created_at, p.access_expires_at, p.id AS newest
                       FROM token_pairs p
                       JOIN families f ON f.id = p.family_id
                       JOIN users u ON u.id = f.user_id
                       WHERE f.app_id = $1 AND f.revoked_at IS NULL AND p.state = 0
                         AND (p.dead_after IS NULL OR p.dead_after > $2)
                       ORDER BY f.id, p.id DESC) live
                   ORDER BY newest DESC LIMIT $3";
        query(&self.client().await?, sql, &[&app_id, &now.secs(), &limit])
            .await?
            .iter()
            .map(|row| {
                Ok(ActiveToken {
                    family_id: row.try_get(0)?,
                    login: row.try_get(1)?,
                    scopes: row.try_get(2)?,
                    access_last_eight: row.try_get(3)?,
                    created_at: Timestamp(row.try_get(4)?),
                    expires_at: row.try_get::<_, Option<i64>>(5)?.map(Timestamp),
                })
            })
            .collect()
    }

    async fn revoke_family(
        &self,
        app_id: i64,
        family_id: i64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &self.client().await?,
            "UPDATE families SET revoked_at = $3
             WHERE id = $2 AND app_id = $1 AND revoked_at IS NULL",
            &[&app_id, &family_id, &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }
}
