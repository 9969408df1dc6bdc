//! Device authorizations in PostgreSQL.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::rules::{DeviceState, PollVerdict, judge_poll};
use refreshd_store::{
    DeviceCodes, DevicePoll, Grant, NewDeviceCode, NewPair, PendingDevice, StoreError,
};

use super::pairs::start_family;
use super::rows::{APP_COLUMNS, app_of};
use super::{Column, Pg, PostgresStore, conflict_or_unavailable, execute, query_opt};

#[async_trait]
impl DeviceCodes for PostgresStore {
    async fn store_device_code(
        &self,
        code: NewDeviceCode,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let stored = execute(
            &self.client().await?,
            "INSERT INTO device_codes (device_digest, user_code_digest, app_id, scopes, state,
                 interval_secs, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &code.device_digest.as_bytes().as_slice(),
                &code.user_code_digest.as_bytes().as_slice(),
                &code.app_id.0,
                &code.scopes.to_github(),
                &DeviceState::Pending.code(),
                &code.interval_secs,
                &now.secs(),
                &code.expires_at.secs(),
            ],
        )
        .await;
        match stored.map_err(|e| conflict_or_unavailable(e, "device code")) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn pending_device_code(
        &self,
        user_code: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<PendingDevice>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {APP_COLUMNS}, d.scopes, d.expires_at FROM device_codes d
                 JOIN apps a ON a.id = d.app_id
                 WHERE d.user_code_digest = $1 AND d.state = {} AND d.expires_at > $2",
                DeviceState::Pending.code()
            )
        });
        let row = query_opt(
            &self.client().await?,
            &SQL,
            &[&user_code.as_bytes().as_slice(), &now.secs()],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(PendingDevice {
            app: app_of(&row)?,
            scopes: Scopes::parse(row.col::<_, &str>("scopes")?),
            expires_at: Timestamp(row.col("expires_at")?),
        }))
    }

    async fn decide_device_code(
        &self,
        user_code: TokenDigest,
        user_id: UserId,
        approve: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let state = if approve {
            DeviceState::Approved
        } else {
            DeviceState::Denied
        };
        let decided = execute(
            &self.client().await?,
            "UPDATE device_codes SET state = $1, user_id = $2
             WHERE user_code_digest = $3 AND state = $4 AND expires_at > $5",
            &[
                &state.code(),
                &user_id.0,
                &user_code.as_bytes().as_slice(),
                &DeviceState::Pending.code(),
                &now.secs(),
            ],
        )
        .await?;
        Ok(decided == 1)
    }

    async fn poll_device_code(
        &self,
        device_code: TokenDigest,
        app_id: AppId,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<DevicePoll, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        let digest = device_code.as_bytes().as_slice();
        // The row stays locked until the poll commits: concurrent polls take turns.
        let row = query_opt(
            &tx,
            "SELECT state, user_id, scopes, interval_secs, last_polled_at, expires_at
             FROM device_codes WHERE device_digest = $1 AND app_id = $2 FOR UPDATE",
            &[&digest, &app_id.0],
        )
        .await?;
        let Some(row) = row else {
            return Ok(DevicePoll::Unknown);
        };
        let state = DeviceState::from_code(row.col::<_, i16>(0)?.into())
            .ok_or_else(|| StoreError::Corrupt("bad device code state".into()))?;
        let interval_secs: i64 = row.col(3)?;
        let verdict = judge_poll(
            state,
            Timestamp(row.col(5)?),
            interval_secs,
            row.col::<_, Option<i64>>(4)?.map(Timestamp),
            now,
        );
        let (answer, update) = match verdict {
            PollVerdict::Spent => (DevicePoll::Unknown, None),
            PollVerdict::Expired => (DevicePoll::Expired, None),
            PollVerdict::Denied => (DevicePoll::Denied, None),
            PollVerdict::Pending => (DevicePoll::Pending, Some((interval_secs, state))),
            PollVerdict::SlowDown { interval_secs } => (
                DevicePoll::SlowDown { interval_secs },
                Some((interval_secs, state)),
            ),
            PollVerdict::Issue => {
                let user_id: Option<i64> = row.col(1)?;
                let user_id = user_id.ok_or_else(|| {
                    StoreError::Corrupt("approved device code without a user".into())
                })?;
                let grant = Grant {
                    app_id,
                    user_id: UserId(user_id),
                    scopes: Scopes::parse(row.col::<_, &str>(2)?),
                };
                start_family(&tx, &grant, &pair, true, now).await?;
                (
                    DevicePoll::Issued { grant },
                    Some((interval_secs, DeviceState::Redeemed)),
                )
            }
        };
        if let Some((interval_secs, state)) = update {
            execute(
                &tx,
                "UPDATE device_codes SET state = $1, interval_secs = $2, last_polled_at = $3
                 WHERE device_digest = $4",
                &[&state.code(), &interval_secs, &now.secs(), &digest],
            )
            .await?;
            tx.commit().await.map_err(Pg)?;
        }
        Ok(answer)
    }
}
