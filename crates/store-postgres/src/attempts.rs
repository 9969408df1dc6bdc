//! Sign-in attempt counts in PostgreSQL: each attempt is counted in a transaction that holds
//! its address's row, so attempts from one address, on any instance, are counted one at a
//! time.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use refreshd_core::Timestamp;
use refreshd_store::rules::attempt_login;
use refreshd_store::{AttemptCounts, AttemptLimits, SignInAttempts, StoreError};

use super::{Column, Pg, PostgresStore, execute, query_opt};

/// Adds an attempt to the count of `login` at `address` (`''`: the address's own), starting a
/// new window if the last one has ended, and locks the row until the transaction ends; `None`,
/// and nothing changed, when the count has reached `limit` in a window still running.
async fn count_one(
    client: &impl GenericClient,
    address: &str,
    login: &str,
    limit: i64,
    limits: AttemptLimits,
    now: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let until = now.plus_secs(limits.window_secs).secs();
    let row = query_opt(
        client,
        "INSERT INTO sign_in_attempts (address, login, attempts, expires_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (address, login) DO UPDATE SET
             attempts = CASE WHEN sign_in_attempts.expires_at <= $4 THEN 1
                             ELSE sign_in_attempts.attempts + 1 END,
             expires_at = CASE WHEN sign_in_attempts.expires_at <= $4 THEN excluded.expires_at
                               ELSE sign_in_attempts.expires_at END
         WHERE sign_in_attempts.expires_at <= $4 OR sign_in_attempts.attempts < $5
         RETURNING attempts",
        &[&address, &login, &until, &now.secs(), &limit],
    )
    .await?;
    Ok(row.map(|r| r.col(0)).transpose()?)
}

#[async_trait]
impl SignInAttempts for PostgresStore {
    async fn count_sign_in_attempt(
        &self,
        login: &str,
        address: &str,
        limits: AttemptLimits,
        now: Timestamp,
    ) -> Result<Option<AttemptCounts>, StoreError> {
        let Some(login) = attempt_login(login) else {
            return Ok(None);
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        // The address's row first, locked until the end: attempts from one address take turns,
        // and never wait on each other in a cycle.
        let per_address = limits.per_address;
        let Some(at_address) = count_one(&tx, address, "", per_address, limits, now).await? else {
            return Ok(None);
        };
        // Refused for the login: dropping the transaction rolls the address's count back.
        let Some(at_login) = count_one(&tx, address, &login, limits.per_login, limits, now).await?
        else {
            return Ok(None);
        };
        tx.commit().await.map_err(Pg)?;
        Ok(Some(AttemptCounts {
            login: at_login,
            address: at_address,
        }))
    }

    async fn clear_sign_in_attempts(
        &self,
        login: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(login) = attempt_login(login) else {
            return Ok(());
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        // The address's row first, as when counting, so the two never wait on each other.
        execute(
            &tx,
            "UPDATE sign_in_attempts SET attempts = attempts - 1
             WHERE address = $1 AND login = '' AND attempts > 0 AND expires_at > $2",
            &[&address, &now.secs()],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM sign_in_attempts WHERE address = $1 AND login = $2",
            &[&address, &login],
        )
        .await?;
        tx.commit().await.map_err(Pg)?;
        Ok(())
    }
}
