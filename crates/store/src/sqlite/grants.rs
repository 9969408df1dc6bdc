//! Codes, token families and their rotation in SQLite. Every write here runs on the single
//! writer inside a group-committed transaction, so each statement sees a stable database.

use async_trait::async_trait;
use refreshd_core::rotation::{ReuseVerdict, RotatedPair, judge_reuse};
use refreshd_core::{Timestamp, TokenDigest};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::find_authorization_in;
use super::{SqliteStore, conflict_or_unavailable, unavailable};
use crate::{
    Authorization, Grant, Grants, NewAccess, NewCode, NewPair, RedeemedCode, Rotation, StoreError,
    Swept,
};

/// Appends a pair to `family_id`. `replay_sealed` is the pair's answer sealed under the
/// predecessor's refresh token.
fn insert_pair(
    conn: &Connection,
    family_id: i64,
    pair: &NewPair,
    replay_sealed: Option<Vec<u8>>,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let (refresh_digest, refresh_expires_at) = match &pair.refresh {
        Some((digest, expires_at)) => (
            Some(digest.as_bytes().to_vec()),
            expires_at.map(Timestamp::secs),
        ),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO token_pairs (family_id, access_digest, access_last_eight, access_expires_at,
             refresh_digest, refresh_expires_at, replay_sealed, created_at, updated_at, dead_after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            family_id,
            pair.access.digest.as_bytes(),
            pair.access.last_eight,
            pair.access.expires_at.map(Timestamp::secs),
            refresh_digest,
            refresh_expires_at,
            replay_sealed,
            now.secs(),
            pair.dead_after().map(Timestamp::secs),
        ])
    })
    .map_err(|e| conflict_or_unavailable(e, "token"))?;
    Ok(conn.last_insert_rowid())
}

/// Creates a family for `grant` with `pair` as its first pair; returns the pair's id.
fn start_family(
    conn: &Connection,
    grant: &Grant,
    pair: &NewPair,
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO families (app_id, user_id, scopes, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            grant.app_id,
            grant.user_id,
            grant.scopes,
            now.secs()
        ])
    })
    .map_err(unavailable)?;
    insert_pair(conn, conn.last_insert_rowid(), pair, None, now)
}

fn grant_of_family(conn: &Connection, family_id: i64) -> Result<Grant, StoreError> {
    conn.prepare_cached("SELECT app_id, user_id, scopes FROM families WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([family_id], |r| {
                Ok(Grant {
                    app_id: r.get(0)?,
                    user_id: r.get(1)?,
                    scopes: r.get(2)?,
                })
            })
        })
        .map_err(unavailable)
}

fn revoke_family(conn: &Connection, family_id: i64, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE families SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![family_id, now.secs()]))
        .map_err(unavailable)?;
    Ok(())
}

/// Ends everything `user_id` granted `app_id`: every token family, every code, and the
/// approval that lets an authorize request skip the consent page. `false`: there was no
/// approval.
pub(super) fn revoke_user_grant(
    conn: &Connection,
    app_id: i64,
    user_id: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    conn.execute(
        "UPDATE families SET revoked_at = ?3
         WHERE app_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![app_id, user_id, now.secs()],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM codes WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM consents WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
    )
    .map(|deleted| deleted > 0)
    .map_err(unavailable)
}

/// Why a refresh token's conditional update matched nothing, and what follows from it.
fn judge_failed_rotation(
    conn: &Connection,
    presented: &TokenDigest,
    app_id: i64,
    now: Timestamp,
    grace_window_secs: i64,
) -> Result<Rotation, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT p.successor_refresh, p.family_id, p.state, p.rotated_at, f.app_id,
                    f.revoked_at IS NOT NULL
             FROM token_pairs p JOIN families f ON f.id = p.family_id
             WHERE p.refresh_digest = ?1",
        )
        .and_then(|mut s| {
            s.query_row([presented.as_bytes()], |r| {
                Ok((
                    r.get::<_, Option<Vec<u8>>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let Some((successor_refresh, family_id, state, rotated_at, owner, family_revoked)) = found
    else {
        return Ok(Rotation::Rejected);
    };
    // Only a token that was rotated is reuse; expired, revoked or foreign ones are just refused.
    if owner != app_id || family_revoked || state != 1 {
        return Ok(Rotation::Rejected);
    }
    let successor = conn
        .prepare_cached("SELECT state, replay_sealed FROM token_pairs WHERE refresh_digest = ?1")
        .and_then(|mut s| {
            s.query_row([successor_refresh], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let (successor_state, sealed) = successor.unwrap_or((2, None));
    let pair = RotatedPair {
        rotated_at: Timestamp(rotated_at),
        successor_is_live: successor_state == 0,
        successor_sealed: sealed.is_some(),
    };
    match (judge_reuse(pair, now, grace_window_secs), sealed) {
        (ReuseVerdict::Replay, Some(sealed)) => Ok(Rotation::Replay {
            sealed,
            grant: grant_of_family(conn, family_id)?,
        }),
        _ => {
            revoke_family(conn, family_id, now)?;
            Ok(Rotation::FamilyRevoked)
        }
    }
}

/// How many token pairs one sweep looks at, or deletes, at most.
const SWEEP_STRETCH: i64 = 20_000;

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

/// The condition that a `token_pairs` row belongs to a live family of the app bound to `?2`.
const OF_LIVE_FAMILY: &str = "EXISTS (SELECT 1 FROM families f WHERE f.id = token_pairs.family_id AND f.app_id = ?2 AND f.revoked_at IS NULL)";

#[async_trait]
impl Grants for SqliteStore {
    async fn store_code(&self, code: NewCode) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO codes (digest, app_id, user_id, scopes, redirect_uri,
                         code_challenge, code_challenge_method, expires_at, with_refresh)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        code.digest.as_bytes(),
                        code.grant.app_id,
                        code.grant.user_id,
                        code.grant.scopes,
                        code.redirect_uri,
                        code.code_challenge,
                        code.code_challenge_method,
                        code.expires_at.secs(),
                        code.with_refresh
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
        app_id: i64,
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
                                   with_refresh",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![code.as_bytes(), app_id, now.secs()], |r| {
                            Ok(RedeemedCode {
                                grant: Grant { app_id, user_id: r.get(0)?, scopes: r.get(1)? },
                                redirect_uri: r.get(2)?,
                                code_challenge: r.get(3)?,
                                code_challenge_method: r.get(4)?,
                                with_refresh: r.get(5)?,
                            })
                        })
                        .optional()
                    })
                    .map_err(unavailable)?;
                if let Some(redeemed) = &redeemed {
                    if !redeemed.with_refresh {
                        pair.refresh = None;
                    }
                    start_family(conn, &redeemed.grant, &pair, now)?;
                }
                Ok(redeemed)
            })
            .await
    }

    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.writer
            .write(move |conn| start_family(conn, &grant, &pair, now))
            .await
    }

    async fn rotate_refresh(
        &self,
        presented: TokenDigest,
        app_id: i64,
        successor: NewPair,
        sealed: Vec<u8>,
        now: Timestamp,
        grace_window_secs: i64,
    ) -> Result<Rotation, StoreError> {
        self.writer
            .write(move |conn| {
                let successor_refresh = successor
                    .refresh
                    .as_ref()
                    .map(|(d, _)| d.as_bytes().to_vec());
                let won = conn
                    .prepare_cached(ROTATE)
                    .and_then(|mut s| {
                        let args =
                            params![presented.as_bytes(), app_id, now.secs(), successor_refresh];
                        s.query_row(args, |r| {
                            let grant = Grant {
                                app_id,
                                user_id: r.get(1)?,
                                scopes: r.get(2)?,
                            };
                            Ok((r.get::<_, i64>(0)?, grant))
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
        app_id: i64,
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
                            app_id,
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
        app_id: i64,
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
                    .and_then(|mut s| s.execute(params![access.as_bytes(), app_id, now.secs()]))
                    .map(|n| n > 0)
                    .map_err(unavailable)
            })
            .await
    }

    async fn revoke_grant(
        &self,
        app_id: i64,
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

    async fn extend_family(
        &self,
        refresh: TokenDigest,
        app_id: i64,
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
                        s.query_row(params![refresh.as_bytes(), app_id, now.secs()], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                Grant {
                                    app_id,
                                    user_id: r.get(1)?,
                                    scopes: r.get(2)?,
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
                let family: Option<i64> = conn
                    .prepare_cached(
                        "SELECT p.family_id FROM token_pairs p JOIN families f ON f.id = p.family_id
                         WHERE (p.access_digest = ?1 OR p.refresh_digest = ?1)
                           AND p.state = 0 AND f.revoked_at IS NULL",
                    )
                    .and_then(|mut s| s.query_row([token.as_bytes()], |r| r.get(0)).optional())
                    .map_err(unavailable)?;
                let Some(family_id) = family else {
                    return Ok(false);
                };
                revoke_family(conn, family_id, now)?;
                Ok(true)
            })
            .await
    }

    async fn sweep(&self, now: Timestamp, grace_window_secs: i64) -> Result<Swept, StoreError> {
        let from = self.swept_up_to.load(std::sync::atomic::Ordering::Relaxed);
        let (swept, until) = self
            .writer
            .write(move |conn| {
                let codes = conn
                    .prepare_cached("DELETE FROM codes WHERE redeemed = 1 OR expires_at <= ?1")
                    .and_then(|mut s| s.execute([now.secs()]))
                    .map_err(unavailable)?;
                for sql in [
                    "DELETE FROM sessions WHERE expires_at <= ?1",
                    "DELETE FROM web_sessions WHERE expires_at <= ?1",
                    "DELETE FROM replays WHERE expires_at <= ?1",
                    "DELETE FROM leases WHERE expires_at <= ?1",
                ] {
                    conn.prepare_cached(sql)
                        .and_then(|mut s| s.execute([now.secs()]))
                        .map_err(unavailable)?;
                }
                let tokens = conn
                    .prepare_cached(
                        "DELETE FROM token_pairs WHERE id IN (
                             SELECT id FROM token_pairs WHERE dead_after <= ?1 LIMIT ?2)",
                    )
                    .and_then(|mut s| s.execute(params![now.secs(), SWEEP_STRETCH]))
                    .map_err(unavailable)?;
                conn.prepare_cached(
                    "DELETE FROM sign_in_attempts WHERE (address, login) IN (
                         SELECT address, login FROM sign_in_attempts WHERE expires_at <= ?1 LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![now.secs(), SWEEP_STRETCH]))
                .map_err(unavailable)?;
                // Pairs are appended in time order, so the sweep walks ids upwards from where
                // it stopped, a bounded number of rows per call (ids have gaps where dead pairs
                // were deleted), never scanning the whole table.
                let cutoff = now.secs() - grace_window_secs;
                let until: Option<i64> = conn
                    .prepare_cached(
                        "SELECT max(id) FROM (SELECT id, created_at FROM token_pairs
                                               WHERE id > ?1 ORDER BY id LIMIT ?2)
                         WHERE created_at < ?3",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![from, SWEEP_STRETCH, cutoff], |r| r.get(0))
                    })
                    .map_err(unavailable)?;
                let replays = match until {
                    Some(until) => conn
                        .prepare_cached(
                            "UPDATE token_pairs SET replay_sealed = NULL
                             WHERE id > ?1 AND id <= ?2 AND replay_sealed IS NOT NULL",
                        )
                        .and_then(|mut s| s.execute([from, until]))
                        .map_err(unavailable)?,
                    None => 0,
                };
                let swept = Swept {
                    codes,
                    replays,
                    tokens,
                };
                Ok((swept, until))
            })
            .await?;
        // Moved only once the sweep is durable.
        if let Some(until) = until {
            self.swept_up_to
                .store(until, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(swept)
    }
}
