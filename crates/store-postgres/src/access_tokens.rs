//! Access tokens in PostgreSQL: looked up on every API call, replaced and revoked.

use async_trait::async_trait;
use refreshd_core::{AppId, Timestamp, TokenDigest};
use refreshd_store::{AccessTokens, Authorization, NewAccess, StoreError};

use super::pairs::revoke_user_grant;
use super::rows::find_authorization_in;
use super::{Pg, PostgresStore, conflict_or_unavailable, execute};

#[async_trait]
impl AccessTokens for PostgresStore {
    async fn find_authorization(
        &self,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        find_authorization_in(&self.client().await?, &access, now).await
    }

    async fn reset_access(
        &self,
        app_id: AppId,
        old: TokenDigest,
        new: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        let client = self.client().await?;
        let changed = execute(
            &client,
            concat!(
                "UPDATE token_pairs
                 SET access_digest = $3, access_last_eight = $4, access_expires_at = $5,
                     updated_at = $6, replay_sealed = NULL,
                     dead_after = CASE
                         WHEN $5::BIGINT IS NULL THEN NULL
                         WHEN refresh_digest IS NULL THEN $5
                         WHEN refresh_expires_at IS NULL THEN NULL
                         ELSE greatest($5, refresh_expires_at) END
                 WHERE access_digest = $1 AND state = 0
                   AND (access_expires_at IS NULL OR access_expires_at > $6)
                   AND ",
                of_live_family!()
            ),
            &[
                &old.as_bytes().as_slice(),
                &app_id.0,
                &new.digest.as_bytes().as_slice(),
                &new.last_eight,
                &new.expires_at.map(Timestamp::secs),
                &now.secs(),
            ],
        )
        .await
        .map_err(|e| conflict_or_unavailable(e, "token"))?;
        if changed == 0 {
            return Ok(None);
        }
        find_authorization_in(&client, &new.digest, now).await
    }

    async fn revoke_access(
        &self,
        app_id: AppId,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &self.client().await?,
            concat!(
                "UPDATE token_pairs SET state = 2, replay_sealed = NULL, updated_at = $3
                 WHERE access_digest = $1 AND state = 0
                   AND (access_expires_at IS NULL OR access_expires_at > $3)
                   AND ",
                of_live_family!()
            ),
            &[&access.as_bytes().as_slice(), &app_id.0, &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn revoke_grant(
        &self,
        app_id: AppId,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        let Some(auth) = find_authorization_in(&tx, &access, now).await? else {
            return Ok(false);
        };
        if auth.app.id != app_id {
            return Ok(false);
        }
        revoke_user_grant(&tx, app_id, auth.user.id, now).await?;
        tx.commit().await.map_err(Pg)?;
        Ok(true)
    }
}
