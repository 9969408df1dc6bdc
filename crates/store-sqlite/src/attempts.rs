//! Sign-in attempt counts in SQLite: the single writer counts one attempt at a time.

use async_trait::async_trait;
use refreshd_core::Timestamp;
use refreshd_store::rules::attempt_login;
use refreshd_store::{AttemptCounts, AttemptLimits, SignInAttempts, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, unavailable};

/// Adds an attempt to the count of `login` at `address` (`''`: the address's own), starting a
/// new window if the last one has ended; `None`, and nothing changed, when the count has
/// reached `limit` in a window still running.
fn count_one(
    conn: &Connection,
    address: &str,
    login: &str,
    limit: i64,
    limits: AttemptLimits,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(
        "INSERT INTO sign_in_attempts (address, login, attempts, expires_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (address, login) DO UPDATE SET
             attempts = CASE WHEN sign_in_attempts.expires_at <= ?4 THEN 1
                             ELSE sign_in_attempts.attempts + 1 END,
             expires_at = CASE WHEN sign_in_attempts.expires_at <= ?4 THEN excluded.expires_at
                               ELSE sign_in_attempts.expires_at END
         WHERE sign_in_attempts.expires_at <= ?4 OR sign_in_attempts.attempts < ?5
         RETURNING attempts",
    )
    .and_then(|mut s| {
        let until = now.plus_secs(limits.window_secs).secs();
        s.query_row(params![address, login, until, now.secs(), limit], |r| {
            r.get(0)
        })
        .optional()
    })
    .map_err(unavailable)
}

#[async_trait]
impl SignInAttempts for SqliteStore {
    async fn count_sign_in_attempt(
        &self,
        login: &str,
        address: &str,
        limits: AttemptLimits,
        now: Timestamp,
    ) -> Result<Option<AttemptCounts>, StoreError> {
        let (Some(login), address) = (attempt_login(login), address.to_owned()) else {
            return Ok(None);
        };
        self.writer
            .write(move |conn| {
                let per_address = limits.per_address;
                let Some(at_address) = count_one(conn, &address, "", per_address, limits, now)?
                else {
                    return Ok(None);
                };
                let Some(at_login) =
                    count_one(conn, &address, &login, limits.per_login, limits, now)?
                else {
                    // Refused for the login: the address's count goes back to what it was.
                    conn.prepare_cached(
                        "UPDATE sign_in_attempts SET attempts = attempts - 1
                         WHERE address = ?1 AND login = ''",
                    )
                    .and_then(|mut s| s.execute([&address]))
                    .map_err(unavailable)?;
                    return Ok(None);
                };
                Ok(Some(AttemptCounts {
                    login: at_login,
                    address: at_address,
                }))
            })
            .await
    }

    async fn clear_sign_in_attempts(
        &self,
        login: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (Some(login), address) = (attempt_login(login), address.to_owned()) else {
            return Ok(());
        };
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE sign_in_attempts SET attempts = attempts - 1
                     WHERE address = ?1 AND login = '' AND attempts > 0 AND expires_at > ?2",
                )
                .and_then(|mut s| s.execute(params![address, now.secs()]))
                .map_err(unavailable)?;
                conn.prepare_cached(
                    "DELETE FROM sign_in_attempts WHERE address = ?1 AND login = ?2",
                )
                .and_then(|mut s| s.execute([&address, &login]))
                .map(drop)
                .map_err(unavailable)
            })
            .await
    }
}
