//! The writes several traits share: appending pairs, starting and revoking families, and
//! ending everything a user granted an app.

use refreshd_core::{AppId, FamilyId, Timestamp, UserId};
use refreshd_store::{Grant, NewPair, StoreError};
use rusqlite::{Connection, params};

use super::{conflict_or_unavailable, unavailable};

/// Appends a pair to `family_id`. `replay_sealed` is the pair's answer sealed under the
/// predecessor's refresh token.
pub(super) fn insert_pair(
    conn: &Connection,
    family_id: FamilyId,
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
            family_id.0,
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
/// `public_client`: started through the device flow (see `Families::public_family_of`).
pub(super) fn start_family(
    conn: &Connection,
    grant: &Grant,
    pair: &NewPair,
    public_client: bool,
    now: Timestamp,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO families (app_id, user_id, scopes, public_client, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            grant.app_id.0,
            grant.user_id.0,
            grant.scopes.to_github(),
            public_client,
            now.secs()
        ])
    })
    .map_err(unavailable)?;
    insert_pair(conn, FamilyId(conn.last_insert_rowid()), pair, None, now)
}

pub(super) fn revoke_family(
    conn: &Connection,
    family_id: FamilyId,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE families SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![family_id.0, now.secs()]))
        .map_err(unavailable)?;
    Ok(())
}

/// Ends everything `user_id` granted `app_id`: every token family, every code, and the
/// approval that lets an authorize request skip the consent page. `false`: there was no
/// approval.
pub(super) fn revoke_user_grant(
    conn: &Connection,
    app_id: AppId,
    user_id: UserId,
    now: Timestamp,
) -> Result<bool, StoreError> {
    conn.execute(
        "UPDATE families SET revoked_at = ?3
         WHERE app_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![app_id.0, user_id.0, now.secs()],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM codes WHERE app_id = ?1 AND user_id = ?2",
        params![app_id.0, user_id.0],
    )
    .map_err(unavailable)?;
    conn.execute(
        "DELETE FROM consents WHERE app_id = ?1 AND user_id = ?2",
        params![app_id.0, user_id.0],
    )
    .map(|deleted| deleted > 0)
    .map_err(unavailable)
}
