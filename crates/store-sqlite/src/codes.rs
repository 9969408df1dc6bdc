//! Authorization codes in SQLite.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::{Codes, Grant, NewCode, NewPair, RedeemedCode, StoreError};
use rusqlite::{OptionalExtension, params};

use super::pairs::start_family;
use super::{SqliteStore, conflict_or_unavailable, unavailable};

#[async_trait]
impl Codes for SqliteStore {
    async fn store_code(&self, code: NewCode) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO codes (digest, app_id, user_id, scopes, redirect_uri,
                         code_challenge, code_challenge_method, expires_at, with_refresh, nonce)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        code.digest.as_bytes(),
                        code.grant.app_id.0,
                        code.grant.user_id.0,
                        code.grant.scopes.to_github(),
                        code.redirect_uri,
                        code.code_challenge,
                        code.code_challenge_method,
                        code.expires_at.secs(),
                        code.with_refresh,
                        code.nonce
                    ],
                )
                .map_err(|e| conflict_or_unavailable(e, "code"))?;
                Ok(())
            })
            .await
    }

    async fn exchange_code(
        &self,
        code: TokenDigest,
        app_id: AppId,
        mut pair: NewPair,
        now: Timestamp,
    ) -> Result<Option<RedeemedCode>, StoreError> {
        self.writer
            .write(move |conn| {
                let redeemed = conn
                    .prepare_cached(
                        "UPDATE codes SET redeemed = 1
                         WHERE digest = ?1 AND app_id = ?2 AND redeemed = 0 AND expires_at > ?3
                         RETURNING user_id, scopes, redirect_uri, code_challenge, code_challenge_method,
                                   with_refresh, nonce",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![code.as_bytes(), app_id.0, now.secs()], |r| {
                            Ok(RedeemedCode {
                                grant: Grant { app_id, user_id: UserId(r.get(0)?), scopes: Scopes::parse(&r.get::<_, String>(1)?) },
                                redirect_uri: r.get(2)?,
                                code_challenge: r.get(3)?,
                                code_challenge_method: r.get(4)?,
                                with_refresh: r.get(5)?,
                                nonce: r.get(6)?,
                            })
                        })
                        .optional()
                    })
                    .map_err(unavailable)?;
                if let Some(redeemed) = &redeemed {
                    if !redeemed.with_refresh {
                        pair.refresh = None;
                    }
                    start_family(conn, &redeemed.grant, &pair, false, now)?;
                }
                Ok(redeemed)
            })
            .await
    }
}
