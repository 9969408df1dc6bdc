//! Codes, token families and their rotation in PostgreSQL, correct across instances: every
//! rule is one conditional statement (a row lock makes concurrent ones take turns, and the
//! loser re-checks its condition against the winner's commit) or one transaction.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use refreshd_core::rotation::{ReuseVerdict, RotatedPair, judge_reuse};
use refreshd_core::{Timestamp, TokenDigest};

use super::rows::find_authorization_in;
use super::{Params, PostgresStore, conflict_or_unavailable, execute, query_opt};
use crate::{
    Authorization, Grant, Grants, NewAccess, NewCode, NewPair, RedeemedCode, Rotation, StoreError,
    Swept,
};

/// How many token pairs one sweep looks at, or deletes, at most.
const SWEEP_STRETCH: i64 = 20_000;

/// Only one instance sweeps a schema at a time; the others skip their turn. The lock is
/// (this constant, a hash of the schema's name), so deployments sharing a database in
/// different schemas do not hold each other up.
const SWEEP_LOCK: i32 = 0x7266_7377;

/// A pair's columns as statement parameters, in `INSERT_PAIR`'s order from `$2`.
struct PairColumns {
    access_digest: Vec<u8>,
    access_last_eight: String,
    access_expires_at: Option<i64>,
    refresh_digest: Option<Vec<u8>>,
    refresh_expires_at: Option<i64>,
    replay_sealed: Option<Vec<u8>>,
    dead_after: Option<i64>,
}

impl PairColumns {
    fn of(pair: &NewPair, replay_sealed: Option<Vec<u8>>) -> Self {
        let (refresh_digest, refresh_expires_at) = match &pair.refresh {
            Some((digest, expires_at)) => (
                Some(digest.as_bytes().to_vec()),
                expires_at.map(Timestamp::secs),
            ),
            None => (None, None),
        };
        Self {
            access_digest: pair.access.digest.as_bytes().to_vec(),
            access_last_eight: pair.access.last_eight.clone(),
            access_expires_at: pair.access.expires_at.map(Timestamp::secs),
            refresh_digest,
            refresh_expires_at,
            replay_sealed,
            dead_after: pair.dead_after().map(Timestamp::secs),
        }
    }
}

/// Starts a family for `$1`..`$3` (app, user, scopes) with its first pair (`$4`..`$10`) at
/// time `$11`, in one statement; returns the pair's id.
const START_FAMILY: &str = "WITH family AS (
         INSERT INTO families (app_id, user_id, scopes, created_at) VALUES ($1, $2, $3, $11)
         RETURNING id)
     INSERT INTO token_pairs (family_id, access_digest, access_last_eight, access_expires_at,
         refresh_digest, refresh_expires_at, replay_sealed, dead_after, created_at, updated_at)
     SELECT id, $4, $5, $6, $7, $8, $9, $10, $11, $11 FROM family
     RETURNING id";

/// That the `token_pairs` row being changed belongs to a live family of app `$2`, with the
/// family looked up by primary key. A macro so that constant statements can include it.
macro_rules! of_live_family {
    () => {
        "(SELECT f.app_id = $2 AND f.revoked_at IS NULL
          FROM families f WHERE f.id = token_pairs.family_id)"
    };
}

/// The rotation, in one statement: a conditional update of the presented token's live pair
/// (of concurrent ones exactly one matches; the others wait for its row lock and then find it
/// rotated) and the successor's insert (`$5`..`$10`), linked by its refresh digest `$4`.
/// Returns the grant; no row when the token could not be rotated. The family is only ever
/// looked up by primary key: with a join or `EXISTS` the planner may scan all of the app's
/// families instead, thousands of rows per rotation.
const ROTATE: &str = concat!(
    "WITH old AS (
         UPDATE token_pairs
         SET state = 1, rotated_at = $3, updated_at = $3, replay_sealed = NULL, successor_refresh = $4
         WHERE refresh_digest = $1 AND state = 0
           AND (refresh_expires_at IS NULL OR refresh_expires_at > $3)
           AND ",
    of_live_family!(),
    "
         RETURNING family_id),
     successor AS (
         INSERT INTO token_pairs (family_id, access_digest, access_last_eight, access_expires_at,
             refresh_digest, refresh_expires_at, replay_sealed, dead_after, created_at, updated_at)
         SELECT family_id, $5, $6, $7, $4, $8, $9, $10, $3, $3 FROM old)
     SELECT f.user_id, f.scopes FROM old JOIN families f ON f.id = old.family_id"
);

async fn start_family(
    client: &impl GenericClient,
    grant: &Grant,
    pair: &NewPair,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let c = PairColumns::of(pair, None);
    let row = query_opt(
        client,
        START_FAMILY,
        &[
            &grant.app_id,
            &grant.user_id,
            &grant.scopes,
            &c.access_digest,
            &c.access_last_eight,
            &c.access_expires_at,
            &c.refresh_digest,
            &c.refresh_expires_at,
            &c.replay_sealed,
            &c.dead_after,
            &now.secs(),
        ],
    )
    .await
    .map_err(|e| conflict_or_unavailable(e, "token"))?;
    let row = row.ok_or_else(|| StoreError::Corrupt("no pair returned by its insert".into()))?;
    Ok(row.try_get(0)?)
}

/// Ends everything `user_id` granted `app_id`: every token family, every code, and the
/// approval that lets an authorize request skip the consent page. `false`: there was no
/// approval.
///
/// Codes go first: deleting a code that a concurrent exchange is redeeming waits for that
/// exchange to commit, so the family it starts is visible to the next statement (each
/// statement reads the commits made before it, under READ COMMITTED) and is revoked with the
/// others.
pub(super) async fn revoke_user_grant(
    tx: &deadpool_postgres::Transaction<'_>,
    app_id: i64,
    user_id: i64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let grant: &Params = &[&app_id, &user_id];
    execute(
        tx,
        "DELETE FROM codes WHERE app_id = $1 AND user_id = $2",
        grant,
    )
    .await?;
    execute(
        tx,
        "UPDATE families SET revoked_at = $3
         WHERE app_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        &[&app_id, &user_id, &now.secs()],
    )
    .await?;
    let deleted = execute(
        tx,
        "DELETE FROM consents WHERE app_id = $1 AND user_id = $2",
        grant,
    )
    .await?;
    Ok(deleted > 0)
}

/// Why a refresh token's conditional update matched nothing, and what follows from it; runs
/// in the rotation's transaction. The successor's row is locked while judging, so it cannot
/// be rotated in between.
async fn judge_failed_rotation(
    tx: &impl GenericClient,
    presented: &TokenDigest,
    app_id: i64,
    now: Timestamp,
    grace_window_secs: i64,
) -> Result<Rotation, StoreError> {
    let found = query_opt(
        tx,
        "SELECT p.successor_refresh, p.family_id, p.state, p.rotated_at, f.app_id,
                f.revoked_at IS NOT NULL AS revoked, f.user_id, f.scopes
         FROM token_pairs p JOIN families f ON f.id = p.family_id
         WHERE p.refresh_digest = $1",
        &[&presented.as_bytes().as_slice()],
    )
    .await?;
    let Some(found) = found else {
        return Ok(Rotation::Rejected);
    };
    let state: i16 = found.try_get("state")?;
    let owner: i64 = found.try_get("app_id")?;
    // Only a token that was rotated is reuse; expired, revoked or foreign ones are just refused.
    if owner != app_id || found.try_get::<_, bool>("revoked")? || state != 1 {
        return Ok(Rotation::Rejected);
    }
    let family_id: i64 = found.try_get("family_id")?;
    let successor_refresh: Option<Vec<u8>> = found.try_get("successor_refresh")?;
    let successor = query_opt(
        tx,
        "SELECT state, replay_sealed FROM token_pairs WHERE refresh_digest = $1 FOR SHARE",
        &[&successor_refresh],
    )
    .await?;
    let (successor_state, sealed) = match successor {
        Some(row) => (
            row.try_get::<_, i16>(0)?,
            row.try_get::<_, Option<Vec<u8>>>(1)?,
        ),
        None => (2, None),
    };
    let pair = RotatedPair {
        rotated_at: Timestamp(found.try_get("rotated_at")?),
        successor_is_live: successor_state == 0,
        successor_sealed: sealed.is_some(),
    };
    let rotation = match (judge_reuse(pair, now, grace_window_secs), sealed) {
        (ReuseVerdict::Replay, Some(sealed)) => Rotation::Replay {
            sealed,
            grant: Grant {
                app_id,
                user_id: found.try_get("user_id")?,
                scopes: found.try_get("scopes")?,
            },
        },
        _ => {
            execute(
                tx,
                "UPDATE families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&family_id, &now.secs()],
            )
            .await?;
            Rotation::FamilyRevoked
        }
    };
    Ok(rotation)
}

#[async_trait]
impl Grants for PostgresStore {
    async fn store_code(&self, code: NewCode) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "INSERT INTO codes (digest, app_id, user_id, scopes, redirect_uri,
                 code_challenge, code_challenge_method, expires_at, with_refresh)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &code.digest.as_bytes().as_slice(),
                &code.grant.app_id,
                &code.grant.user_id,
                &code.grant.scopes,
                &code.redirect_uri,
                &code.code_challenge,
                &code.code_challenge_method,
                &code.expires_at.secs(),
                &code.with_refresh,
            ],
        )
        .await
        .map_err(|e| conflict_or_unavailable(e, "code"))?;
        Ok(())
    }

    async fn exchange_code(
        &self,
        code: TokenDigest,
        app_id: i64,
        mut pair: NewPair,
        now: Timestamp,
    ) -> Result<Option<RedeemedCode>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = query_opt(
            &tx,
            "UPDATE codes SET redeemed = true
             WHERE digest = $1 AND app_id = $2 AND NOT redeemed AND expires_at > $3
             RETURNING user_id, scopes, redirect_uri, code_challenge, code_challenge_method,
                 with_refresh",
            &[&code.as_bytes().as_slice(), &app_id, &now.secs()],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let redeemed = RedeemedCode {
            grant: Grant {
                app_id,
                user_id: row.try_get(0)?,
                scopes: row.try_get(1)?,
            },
            redirect_uri: row.try_get(2)?,
            code_challenge: row.try_get(3)?,
            code_challenge_method: row.try_get(4)?,
            with_refresh: row.try_get(5)?,
        };
        if !redeemed.with_refresh {
            pair.refresh = None;
        }
        start_family(&tx, &redeemed.grant, &pair, now).await?;
        tx.commit().await?;
        Ok(Some(redeemed))
    }

    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        start_family(&self.client().await?, &grant, &pair, now).await
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
        let mut client = self.client().await?;
        let c = PairColumns::of(&successor, Some(sealed));
        let won = query_opt(
            &client,
            ROTATE,
            &[
                &presented.as_bytes().as_slice(),
                &app_id,
                &now.secs(),
                &c.refresh_digest,
                &c.access_digest,
                &c.access_last_eight,
                &c.access_expires_at,
                &c.refresh_expires_at,
                &c.replay_sealed,
                &c.dead_after,
            ],
        )
        .await
        .map_err(|e| conflict_or_unavailable(e, "token"))?;
        match won {
            Some(row) => Ok(Rotation::Rotated {
                grant: Grant {
                    app_id,
                    user_id: row.try_get(0)?,
                    scopes: row.try_get(1)?,
                },
            }),
            None => {
                let tx = client.transaction().await?;
                let judged =
                    judge_failed_rotation(&tx, &presented, app_id, now, grace_window_secs).await?;
                tx.commit().await?;
                Ok(judged)
            }
        }
    }

    async fn find_authorization(
        &self,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<Authorization>, StoreError> {
        find_authorization_in(&self.client().await?, &access, now).await
    }

    async fn reset_access(
        &self,
        app_id: i64,
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
                &app_id,
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
        app_id: i64,
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
            &[&access.as_bytes().as_slice(), &app_id, &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn revoke_grant(
        &self,
        app_id: i64,
        access: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(auth) = find_authorization_in(&tx, &access, now).await? else {
            return Ok(false);
        };
        if auth.app.id != app_id {
            return Ok(false);
        }
        revoke_user_grant(&tx, app_id, auth.user.id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn extend_family(
        &self,
        refresh: TokenDigest,
        app_id: i64,
        access: NewAccess,
        now: Timestamp,
    ) -> Result<Option<Grant>, StoreError> {
        let pair = NewPair {
            access,
            refresh: None,
        };
        let c = PairColumns::of(&pair, None);
        // One statement: the refresh token's pair is locked (FOR SHARE) so a concurrent
        // revocation either comes first and wins, or waits for this access token to exist.
        let row = query_opt(
            &self.client().await?,
            "WITH live AS (
                 SELECT p.family_id, f.user_id, f.scopes
                 FROM token_pairs p JOIN families f ON f.id = p.family_id
                 WHERE p.refresh_digest = $1 AND p.state = 0
                   AND (p.refresh_expires_at IS NULL OR p.refresh_expires_at > $3)
                   AND f.app_id = $2 AND f.revoked_at IS NULL
                 FOR SHARE OF p, f),
             added AS (
                 INSERT INTO token_pairs (family_id, access_digest, access_last_eight,
                     access_expires_at, dead_after, created_at, updated_at)
                 SELECT family_id, $4, $5, $6, $7, $3, $3 FROM live
                 RETURNING family_id)
             SELECT live.user_id, live.scopes FROM live JOIN added USING (family_id)",
            &[
                &refresh.as_bytes().as_slice(),
                &app_id,
                &now.secs(),
                &c.access_digest,
                &c.access_last_eight,
                &c.access_expires_at,
                &c.dead_after,
            ],
        )
        .await
        .map_err(|e| conflict_or_unavailable(e, "token"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Grant {
            app_id,
            user_id: row.try_get(0)?,
            scopes: row.try_get(1)?,
        }))
    }

    async fn revoke_family_of(
        &self,
        token: TokenDigest,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &self.client().await?,
            "UPDATE families SET revoked_at = $2
             WHERE revoked_at IS NULL AND id IN (
                 SELECT family_id FROM token_pairs
                 WHERE (access_digest = $1 OR refresh_digest = $1) AND state = 0)",
            &[&token.as_bytes().as_slice(), &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn sweep(&self, now: Timestamp, grace_window_secs: i64) -> Result<Swept, StoreError> {
        let from = self.swept_up_to.load(std::sync::atomic::Ordering::Relaxed);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))",
                &[&SWEEP_LOCK],
            )
            .await?
            .get(0);
        if !locked {
            return Ok(Swept::default());
        }
        let now_secs = now.secs();
        let codes = execute(
            &tx,
            "DELETE FROM codes WHERE redeemed OR expires_at <= $1",
            &[&now_secs],
        )
        .await?;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM web_sessions WHERE expires_at <= $1",
            "DELETE FROM replays WHERE expires_at <= $1",
            "DELETE FROM leases WHERE expires_at <= $1",
        ] {
            execute(&tx, sql, &[&now_secs]).await?;
        }
        let tokens = execute(
            &tx,
            "DELETE FROM token_pairs WHERE id IN (
                 SELECT id FROM token_pairs WHERE dead_after <= $1 LIMIT $2)",
            &[&now_secs, &SWEEP_STRETCH],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM sign_in_attempts WHERE (address, login) IN (
                 SELECT address, login FROM sign_in_attempts WHERE expires_at <= $1 LIMIT $2)",
            &[&now_secs, &SWEEP_STRETCH],
        )
        .await?;
        // Pairs are appended in time order, so forgetting old replay answers walks ids upwards
        // from where the last sweep stopped, a bounded number of rows per call (ids have gaps
        // where dead pairs were deleted).
        let cutoff = now_secs - grace_window_secs;
        let until: Option<i64> = tx
            .query_one(
                "SELECT max(id) FROM (SELECT id, created_at FROM token_pairs
                                       WHERE id > $1 ORDER BY id LIMIT $2) AS next
                 WHERE created_at < $3",
                &[&from, &SWEEP_STRETCH, &cutoff],
            )
            .await?
            .get(0);
        let replays = match until {
            Some(until) => {
                execute(
                    &tx,
                    "UPDATE token_pairs SET replay_sealed = NULL
                     WHERE id > $1 AND id <= $2 AND replay_sealed IS NOT NULL",
                    &[&from, &until],
                )
                .await?
            }
            None => 0,
        };
        tx.commit().await?;
        if let Some(until) = until {
            self.swept_up_to
                .store(until, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Swept {
            codes: codes as usize,
            replays: replays as usize,
            tokens: tokens as usize,
        })
    }
}
