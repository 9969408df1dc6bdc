//! The provider's users in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{Login, Timestamp};
use refreshd_store::{NewUser, StoreError, User, Users};

use super::rows::{USER_COLUMNS, find_user_in, user_of};
use super::{Column, Params, PostgresStore, conflict_or_unavailable, execute, query_opt};

#[async_trait]
impl Users for PostgresStore {
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users AS u (login, name, email, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             RETURNING {USER_COLUMNS}"
        );
        let params: &Params = &[&user.login.as_str(), &user.name, &user.email, &now.secs()];
        let row = query_opt(&self.client().await?, &sql, params)
            .await
            .map_err(|e| conflict_or_unavailable(e, "user"))?;
        user_of(&row.ok_or_else(|| StoreError::Corrupt("no user returned by its insert".into()))?)
    }

    async fn find_user(&self, login: &Login) -> Result<Option<User>, StoreError> {
        find_user_in(&self.client().await?, login).await
    }

    async fn set_password(
        &self,
        login: &Login,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // One statement: the new password and the end of every session signed in with the old.
        let changed = execute(
            &self.client().await?,
            "WITH changed AS (
                 UPDATE users SET password_hash = $2, updated_at = $3
                 WHERE lower(login) = lower($1) RETURNING id),
             ended AS (
                 DELETE FROM web_sessions WHERE user_id IN (SELECT id FROM changed))
             SELECT 1 FROM changed",
            &[&login.as_str(), &password_hash, &now.secs()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn password_hash(&self, login: &Login) -> Result<Option<String>, StoreError> {
        let row = query_opt(
            &self.client().await?,
            "SELECT password_hash FROM users WHERE lower(login) = lower($1)",
            &[&login.as_str()],
        )
        .await?;
        Ok(row.map(|r| r.col(0)).transpose()?.flatten())
    }
}
