//! The provider's users in SQLite.

use async_trait::async_trait;
use refreshd_core::{Login, Timestamp};
use refreshd_store::{NewUser, StoreError, User, Users};
use rusqlite::{OptionalExtension, params};

use super::rows::find_user_in;
use super::{SqliteStore, conflict_or_unavailable, unavailable};

#[async_trait]
impl Users for SqliteStore {
    async fn create_user(&self, user: NewUser, now: Timestamp) -> Result<User, StoreError> {
        self.writer
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO users (login, name, email, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![user.login.as_str(), user.name, user.email, now.secs()],
                )
                .map_err(|e| conflict_or_unavailable(e, "user"))?;
                find_user_in(conn, &user.login)?
                    .ok_or_else(|| StoreError::Corrupt("user vanished after insert".into()))
            })
            .await
    }

    async fn find_user(&self, login: &Login) -> Result<Option<User>, StoreError> {
        self.readers.read(|conn| find_user_in(conn, login))
    }

    async fn set_password(
        &self,
        login: &Login,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (login, password_hash) = (login.as_str().to_owned(), password_hash.to_owned());
        self.writer
            .write(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE login = ?1",
                        params![login, password_hash, now.secs()],
                    )
                    .map_err(unavailable)?;
                conn.execute(
                    "DELETE FROM web_sessions
                     WHERE user_id = (SELECT id FROM users WHERE login = ?1)",
                    [&login],
                )
                .map_err(unavailable)?;
                Ok(changed > 0)
            })
            .await
    }

    async fn password_hash(&self, login: &Login) -> Result<Option<String>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached("SELECT password_hash FROM users WHERE login = ?1")
                .and_then(|mut s| s.query_row([login.as_str()], |r| r.get(0)).optional())
                .map(Option::flatten)
                .map_err(unavailable)
        })
    }
}
