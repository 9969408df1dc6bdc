//! Authorization codes in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::{Codes, Grant, NewCode, NewPair, RedeemedCode, StoreError};

use super::pairs::start_family;
use super::{Column, Pg, PostgresStore, conflict_or_unavailable, execute, query_opt};

#[async_trait]
impl Codes for PostgresStore {
    async fn store_code(&self, code: NewCode) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO codes (digest, app_id, user_id, scopes, redirect_uri,
                 code_challenge, code_challenge_method, expires_at, with_refresh, nonce)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &code.digest.as_bytes().as_slice(),
                &code.grant.app_id.0,
                &code.grant.user_id.0,
                &code.grant.scopes.to_github(),
                &code.redirect_uri,
                &code.code_challenge,
                &code.code_challenge_method,
                &code.expires_at.secs(),
                &code.with_refresh,
                &code.nonce,
            ],
        )
        .await
        .map_err(|e| conflict_or_unavailable(e, "code"))?;
        Ok(())
    }

    async fn exchange_code(
        &self,
        code: TokenDigest,
        app_id: AppId,
        mut pair: NewPair,
        now: Timestamp,
    ) -> Result<Option<RedeemedCode>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        let row = query_opt(
            &tx,
            "UPDATE codes SET redeemed = true
             WHERE digest = $1 AND app_id = $2 AND NOT redeemed AND expires_at > $3
             RETURNING user_id, scopes, redirect_uri, code_challenge, code_challenge_method,
                 with_refresh, nonce",
            &[&code.as_bytes().as_slice(), &app_id.0, &now.secs()],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let redeemed = RedeemedCode {
            grant: Grant {
                app_id,
                user_id: UserId(row.col(0)?),
                scopes: Scopes::parse(row.col::<_, &str>(1)?),
            },
            redirect_uri: row.col(2)?,
            code_challenge: row.col(3)?,
            code_challenge_method: row.col(4)?,
            with_refresh: row.col(5)?,
            nonce: row.col(6)?,
        };
        if !redeemed.with_refresh {
            pair.refresh = None;
        }
        start_family(&tx, &redeemed.grant, &pair, false, now).await?;
        tx.commit().await.map_err(Pg)?;
        Ok(Some(redeemed))
    }
}
