//! Token families in SQLite: started, rotated, extended and revoked. Every write here runs on
//! the single writer inside a group-committed transaction, so each statement sees a stable
//! database.

use async_trait::async_trait;
use refreshd_core::{AppId, FamilyId, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::rules::{self, FailedRotation, PresentedPair, SuccessorPair};
use refreshd_store::{
    ActiveToken, Families, Grant, NewAccess, NewPair, Rotate, Rotation, StoreError,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::pairs::{insert_pair, revoke_family, start_family};
use super::rows::{login_of, state_of};
use super::{SqliteStore, unavailable};

/// Why a refresh token's conditional update matched nothing, and what follows from it: reads
/// what `rules::judge_failed_rotation` needs and applies its verdict.
fn judge_failed_rotation(
    conn: &Connection,
    presented: &TokenDigest,
    app_id: AppId,
    now: Timestamp,
    grace_window_secs: i64,
) -> Result<Rotation, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT p.successor_refresh, p.family_id, p.state, p.rotated_at, f.app_id,
                    f.revoked_at IS NOT NULL, f.user_id, f.scopes
             FROM token_pairs p JOIN families f ON f.id = p.family_id
             WHERE p.refresh_digest = ?1",
        )
        .and_then(|mut s| {
            s.query_row([presented.as_bytes()], |r| {
                let pair = PresentedPair {
                    family_id: FamilyId(r.get(1)?),
                    state: state_of(r.get(2)?)?,
                    rotated_at: Timestamp(r.get(3)?),
                    grant: Grant {
                        app_id: AppId(r.get(4)?),
                        user_id: UserId(r.get(6)?),
                        scopes: Scopes::parse(&r.get::<_, String>(7)?),
                    },
                    family_revoked: r.get(5)?,
                };
                Ok((r.get::<_, Option<Vec<u8>>>(0)?, pair))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let successor = match &found {
        Some((successor_refresh, pair)) if pair.may_be_reuse(app_id) => conn
            .prepare_cached(
                "SELECT state, replay_sealed FROM token_pairs WHERE refresh_digest = ?1",
            )
            .and_then(|mut s| {
                s.query_row([successor_refresh], |r| {
                    Ok(SuccessorPair {
                        state: state_of(r.get(0)?)?,
                        sealed: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)?,
        _ => None,
    };
    let presented = found.as_ref().map(|(_, pair)| pair);
    match rules::judge_failed_rotation(presented, app_id, successor, now, grace_window_secs) {
        FailedRotation::Reject => Ok(Rotation::Rejected),
        FailedRotation::Replay { grant, sealed } => Ok(Rotation::Replay { sealed, grant }),
        FailedRotation::RevokeFamily { family_id } => {
            revoke_family(conn, family_id, now)?;
            Ok(Rotation::FamilyRevoked)
        }
    }
}

/// The rotation itself: a conditional update, so of concurrent ones exactly one matches. It
/// links the successor by its refresh digest, drops the old pair's own sealed answer (it can
/// never be replayed again) and returns the family and its grant.
const ROTATE: &str = "UPDATE token_pairs
     SET state = 1, rotated_at = ?3, updated_at = ?3, replay_sealed = NULL, successor_refresh = ?4
     WHERE refresh_digest = ?1 AND state = 0 AND (refresh_expires_at IS NULL OR refresh_expires_at > ?3)
       AND EXISTS (SELECT 1 FROM families f
                   WHERE f.id = token_pairs.family_id AND f.app_id = ?2 AND f.revoked_at IS NULL)
     RETURNING family_id,
       (SELECT user_id FROM families f WHERE f.id = token_pairs.family_id),
       (SELECT scopes FROM families f WHERE f.id = token_pairs.family_id)";

#[async_trait]
impl Families for SqliteStore {
    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.writer
            .write(move |conn| start_family(conn, &grant, &pair, false, now))
            .await
    }

    async fn rotate_refresh(&self, rotate: Rotate, now: Timestamp) -> Result<Rotation, StoreError> {
        let Rotate {
            presented,
            app_id,
            successor,
            sealed,
            grace_window_secs,
        } = rotate;
        self.writer
            .write(move |conn| {
                let successor_refresh = successor
                    .refresh
                    .as_ref()
                    .map(|(d, _)| d.as_bytes().to_vec());
                let won = conn
                    .prepare_cached(ROTATE)
                    .and_then(|mut s| {
                        let args = params![
                            presented.as_bytes(),
                            app_id.0,
                            now.secs(),
                            successor_refresh
                        ];
                        s.query_row(args, |r| {
                            let grant = Grant {
                                app_id,
                                user_id: UserId(r.get(1)?),
                                scopes: Scopes::parse(&r.get::<_, String>(2)?),
                            };
                            Ok((FamilyId(r.get(0)?), grant))
                        })
                        .optional()
                    })
                    .map_err(unavailable)?;
                let Some((family_id, grant)) = won else {
                    return judge_failed_rotation(conn, &presented, app_id, now, grace_window_secs);
                };
                insert_pair(conn, family_id, &successor, Some(sealed), now)?;
                Ok(Rotation::Rotated { grant })
            })
            .await
    }

    async fn extend_family(
        &self,
        refresh: TokenDigest,
        app_id: AppId,
        access: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        self.writer
            .write(move |conn| {
                let found = conn
                    .prepare_cached(
                        "SELECT p.family_id, f.user_id, f.scopes
                         FROM token_pairs p JOIN families f ON f.id = p.family_id
                         WHERE p.refresh_digest = ?1 AND p.state = 0
                           AND (p.refresh_expires_at IS NULL OR p.refresh_expires_at > ?3)
                           AND f.app_id = ?2 AND f.revoked_at IS NULL",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![refresh.as_bytes(), app_id.0, now.secs()], |r| {
                            Ok((
                                FamilyId(r.get(0)?),
                                Grant {
                                    app_id,
                                    user_id: UserId(r.get(1)?),
                                    scopes: Scopes::parse(&r.get::<_, String>(2)?),
                                },
                            ))
                        })
                        .optional()
                    })
                    .map_err(unavailable)?;
                let Some((family_id, grant)) = found else {
                    return Ok(None);
                };
                insert_pair(
                    conn,
                    family_id,
                    &NewPair {
                        access,
                        refresh: None,
                    },
                    None,
                    now,
                )?;
                Ok(Some(grant))
            })
            .await
    }

    async fn revoke_family_of(
        &self,
        token: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                let family: Option<FamilyId> = conn
                    .prepare_cached(
                        "SELECT p.family_id FROM token_pairs p JOIN families f ON f.id = p.family_id
                         WHERE (p.access_digest = ?1 OR p.refresh_digest = ?1)
                           AND p.state = 0 AND f.revoked_at IS NULL",
                    )
                    .and_then(|mut s| s.query_row([token.as_bytes()], |r| r.get(0).map(FamilyId)).optional())
                    .map_err(unavailable)?;
                let Some(family_id) = family else {
                    return Ok(false);
                };
                revoke_family(conn, family_id, now)?;
                Ok(true)
            })
            .await
    }

    async fn public_family_of(
        &self,
        refresh: TokenDigest,
        app_id: AppId,
    ) -> Result<bool, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached(
                "SELECT f.public_client FROM token_pairs p JOIN families f ON f.id = p.family_id
                 WHERE p.refresh_digest = ?1 AND f.app_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![refresh.as_bytes(), app_id.0], |r| r.get(0))
                    .optional()
            })
            .map(|public: Option<bool>| public.unwrap_or(false))
            .map_err(unavailable)
        })
    }

    async fn active_tokens(
        &self,
        app_id: AppId,
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
                .query_map(params![app_id.0, now.secs(), limit], |row| {
                    Ok(ActiveToken {
                        family_id: FamilyId(row.get(0)?),
                        login: login_of(row.get::<_, String>(1)?)?,
                        scopes: Scopes::parse(&row.get::<_, String>(2)?),
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
        app_id: AppId,
        family_id: FamilyId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "UPDATE families SET revoked_at = ?3
                     WHERE id = ?2 AND app_id = ?1 AND revoked_at IS NULL",
                    params![app_id.0, family_id.0, now.secs()],
                )
                .map(|changed| changed > 0)
                .map_err(unavailable)
            })
            .await
    }
}
