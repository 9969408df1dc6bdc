//! Token families in PostgreSQL, correct across instances: every rule is one conditional
//! statement (a row lock makes concurrent ones take turns, and the loser re-checks its
//! condition against the winner's commit) or one transaction.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use refreshd_core::{AppId, FamilyId, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::rules::{self, FailedRotation, PresentedPair, SuccessorPair};
use refreshd_store::{
    ActiveToken, Families, Grant, NewAccess, NewPair, Rotate, Rotation, StoreError,
};

use super::pairs::{PairColumns, start_family};
use super::rows::{login_of, state_of};
use super::{Column, Pg, PostgresStore, conflict_or_unavailable, execute, query, query_opt};

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

/// The presented token's pair and family, from `judge_failed_rotation`'s first read.
fn presented_pair_of(row: &tokio_postgres::Row) -> Result<PresentedPair, StoreError> {
    Ok(PresentedPair {
        family_id: FamilyId(row.col("family_id")?),
        grant: Grant {
            app_id: AppId(row.col("app_id")?),
            user_id: UserId(row.col("user_id")?),
            scopes: Scopes::parse(row.col::<_, &str>("scopes")?),
        },
        family_revoked: row.col("revoked")?,
        state: state_of(row.col::<_, i16>("state")?.into())?,
        rotated_at: Timestamp(row.col("rotated_at")?),
    })
}

/// Why a refresh token's conditional update matched nothing, and what follows from it; runs
/// in the rotation's transaction. Reads what `rules::judge_failed_rotation` needs and applies
/// its verdict. The successor's row is locked while judging, so it cannot be rotated in
/// between.
async fn judge_failed_rotation(
    tx: &impl GenericClient,
    presented: &TokenDigest,
    app_id: AppId,
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
    let (pair, successor_refresh) = match &found {
        Some(row) => (
            Some(presented_pair_of(row)?),
            row.col::<_, Option<Vec<u8>>>("successor_refresh")?,
        ),
        None => (None, None),
    };
    let mut successor = None;
    if pair.as_ref().is_some_and(|p| p.may_be_reuse(app_id)) {
        let read = query_opt(
            tx,
            "SELECT state, replay_sealed FROM token_pairs WHERE refresh_digest = $1 FOR SHARE",
            &[&successor_refresh],
        )
        .await?;
        if let Some(read) = read {
            successor = Some(SuccessorPair {
                state: state_of(read.col::<_, i16>(0)?.into())?,
                sealed: read.col(1)?,
            });
        }
    }
    let verdict =
        rules::judge_failed_rotation(pair.as_ref(), app_id, successor, now, grace_window_secs);
    let rotation = match verdict {
        FailedRotation::Reject => Rotation::Rejected,
        FailedRotation::Replay { grant, sealed } => Rotation::Replay { sealed, grant },
        FailedRotation::RevokeFamily { family_id } => {
            execute(
                tx,
                "UPDATE families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&family_id.0, &now.secs()],
            )
            .await?;
            Rotation::FamilyRevoked
        }
    };
    Ok(rotation)
}

#[async_trait]
impl Families for PostgresStore {
    async fn issue_pair(
        &self,
        grant: Grant,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        start_family(&self.client().await?, &grant, &pair, false, now).await
    }

    async fn rotate_refresh(&self, rotate: Rotate, now: Timestamp) -> Result<Rotation, StoreError> {
        let Rotate {
            presented,
            app_id,
            successor,
            sealed,
            grace_window_secs,
        } = rotate;
        let mut client = self.client().await?;
        let c = PairColumns::of(&successor, Some(sealed));
        let won = query_opt(
            &client,
            ROTATE,
            &[
                &presented.as_bytes().as_slice(),
                &app_id.0,
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
                    user_id: UserId(row.col(0)?),
                    scopes: Scopes::parse(row.col::<_, &str>(1)?),
                },
            }),
            None => {
                let tx = client.transaction().await.map_err(Pg)?;
                let judged =
                    judge_failed_rotation(&tx, &presented, app_id, now, grace_window_secs).await?;
                tx.commit().await.map_err(Pg)?;
                Ok(judged)
            }
        }
    }

    async fn extend_family(
        &self,
        refresh: TokenDigest,
        app_id: AppId,
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
                &app_id.0,
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
            user_id: UserId(row.col(0)?),
            scopes: Scopes::parse(row.col::<_, &str>(1)?),
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

    async fn public_family_of(
        &self,
        refresh: TokenDigest,
        app_id: AppId,
    ) -> Result<bool, StoreError> {
        let row = query_opt(
            &self.client().await?,
            "SELECT f.public_client FROM token_pairs p JOIN families f ON f.id = p.family_id
             WHERE p.refresh_digest = $1 AND f.app_id = $2",
            &[&refresh.as_bytes().as_slice(), &app_id.0],
        )
        .await?;
        match row {
            Some(row) => Ok(row.col(0)?),
            None => Ok(false),
        }
    }

    async fn active_tokens(
        &self,
        app_id: AppId,
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
        query(
            &self.client().await?,
            sql,
            &[&app_id.0, &now.secs(), &limit],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(ActiveToken {
                family_id: FamilyId(row.col(0)?),
                login: login_of(row.col(1)?)?,
                scopes: Scopes::parse(row.col::<_, &str>(2)?),
                access_last_eight: row.col(3)?,
                created_at: Timestamp(row.col(4)?),
                expires_at: row.col::<_, Option<i64>>(5)?.map(Timestamp),
            })
        })
        .collect()
    }

    async fn revoke_family(
        &self,
        app_id: AppId,
        family_id: FamilyId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &self.client().await?,
            "UPDATE families SET revoked_at = $3
             WHERE id = $2 AND app_id = $1 AND revoked_at IS NULL",
            &[&app_id.0, &family_id.0, &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }
}
