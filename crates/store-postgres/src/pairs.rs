//! The writes several traits share: a pair's columns, starting a family, and ending
//! everything a user granted an app.

use deadpool_postgres::GenericClient;
use refreshd_core::{AppId, Timestamp, UserId};
use refreshd_store::{Grant, NewPair, StoreError};

use super::{Column, Params, conflict_or_unavailable, execute, query_opt};

/// A pair's columns as statement parameters, in `INSERT_PAIR`'s order from `$2`.
pub(super) struct PairColumns {
    pub(super) access_digest: Vec<u8>,
    pub(super) access_last_eight: String,
    pub(super) access_expires_at: Option<i64>,
    pub(super) refresh_digest: Option<Vec<u8>>,
    pub(super) refresh_expires_at: Option<i64>,
    pub(super) replay_sealed: Option<Vec<u8>>,
    pub(super) dead_after: Option<i64>,
}

impl PairColumns {
    pub(super) fn of(pair: &NewPair, replay_sealed: Option<Vec<u8>>) -> Self {
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
/// time `$11`, public client or not (`$12`), in one statement; returns the pair's id.
const START_FAMILY: &str = "WITH family AS (
         INSERT INTO families (app_id, user_id, scopes, created_at, public_client)
         VALUES ($1, $2, $3, $11, $12)
         RETURNING id)
     INSERT INTO token_pairs (family_id, access_digest, access_last_eight, access_expires_at,
         refresh_digest, refresh_expires_at, replay_sealed, dead_after, created_at, updated_at)
     SELECT id, $4, $5, $6, $7, $8, $9, $10, $11, $11 FROM family
     RETURNING id";

/// `public_client`: started through the device flow (see `Families::public_family_of`).
pub(super) async fn start_family(
    client: &impl GenericClient,
    grant: &Grant,
    pair: &NewPair,
    public_client: bool,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let c = PairColumns::of(pair, None);
    let row = query_opt(
        client,
        START_FAMILY,
        &[
            &grant.app_id.0,
            &grant.user_id.0,
            &grant.scopes.to_github(),
            &c.access_digest,
            &c.access_last_eight,
            &c.access_expires_at,
            &c.refresh_digest,
            &c.refresh_expires_at,
            &c.replay_sealed,
            &c.dead_after,
            &now.secs(),
            &public_client,
        ],
    )
    .await
    .map_err(|e| conflict_or_unavailable(e, "token"))?;
    let row = row.ok_or_else(|| StoreError::Corrupt("no pair returned by its insert".into()))?;
    Ok(row.col(0)?)
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
    app_id: AppId,
    user_id: UserId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let grant: &Params = &[&app_id.0, &user_id.0];
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
        &[&app_id.0, &user_id.0, &now.secs()],
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
