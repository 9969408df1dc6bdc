//! Device authorizations in SQLite.

use async_trait::async_trait;
use refreshd_core::{AppId, Scopes, Timestamp, TokenDigest, UserId};
use refreshd_store::rules::{DeviceState, PollVerdict, judge_poll};
use refreshd_store::{
    DeviceCodes, DevicePoll, Grant, NewDeviceCode, NewPair, PendingDevice, StoreError,
};
use rusqlite::{OptionalExtension, params};

use super::pairs::start_family;
use super::rows::{APP_COLUMNS, app_of};
use super::{SqliteStore, conflict_or_unavailable, unavailable};

#[async_trait]
impl DeviceCodes for SqliteStore {
    async fn store_device_code(
        &self,
        code: NewDeviceCode,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| {
                let stored = conn.execute(
                    "INSERT INTO device_codes (device_digest, user_code_digest, app_id, scopes,
                         state, interval_secs, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        code.device_digest.as_bytes(),
                        code.user_code_digest.as_bytes(),
                        code.app_id.0,
                        code.scopes.to_github(),
                        DeviceState::Pending.code(),
                        code.interval_secs,
                        now.secs(),
                        code.expires_at.secs()
                    ],
                );
                match stored.map_err(|e| conflict_or_unavailable(e, "device code")) {
                    Ok(_) => Ok(true),
                    Err(StoreError::Conflict(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn pending_device_code(
        &self,
        user_code: TokenDigest,
        now: Timestamp,
    ) -> Result<Option<PendingDevice>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {APP_COLUMNS}, d.scopes, d.expires_at FROM device_codes d
                 JOIN apps a ON a.id = d.app_id
                 WHERE d.user_code_digest = ?1 AND d.state = {} AND d.expires_at > ?2",
                DeviceState::Pending.code()
            ))
            .and_then(|mut s| {
                s.query_row(params![user_code.as_bytes(), now.secs()], |r| {
                    Ok(PendingDevice {
                        app: app_of(r)?,
                        scopes: Scopes::parse(&r.get::<_, String>("scopes")?),
                        expires_at: Timestamp(r.get("expires_at")?),
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
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
        self.writer
            .write(move |conn| {
                let decided = conn
                    .execute(
                        "UPDATE device_codes SET state = ?1, user_id = ?2
                         WHERE user_code_digest = ?3 AND state = ?4 AND expires_at > ?5",
                        params![
                            state.code(),
                            user_id.0,
                            user_code.as_bytes(),
                            DeviceState::Pending.code(),
                            now.secs()
                        ],
                    )
                    .map_err(unavailable)?;
                Ok(decided == 1)
            })
            .await
    }

    async fn poll_device_code(
        &self,
        device_code: TokenDigest,
        app_id: AppId,
        pair: NewPair,
        now: Timestamp,
    ) -> Result<DevicePoll, StoreError> {
        self.writer
            .write(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT state, user_id, scopes, interval_secs, last_polled_at, expires_at
                         FROM device_codes WHERE device_digest = ?1 AND app_id = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![device_code.as_bytes(), app_id.0], |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, Option<i64>>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, Option<i64>>(4)?,
                                r.get::<_, i64>(5)?,
                            ))
                        })
                        .optional()
                    })
                    .map_err(unavailable)?;
                let Some((state, user_id, scopes, interval_secs, last_polled_at, expires_at)) = row
                else {
                    return Ok(DevicePoll::Unknown);
                };
                let state = DeviceState::from_code(state)
                    .ok_or_else(|| StoreError::Corrupt("bad device code state".into()))?;
                let verdict = judge_poll(
                    state,
                    Timestamp(expires_at),
                    interval_secs,
                    last_polled_at.map(Timestamp),
                    now,
                );
                let update = |interval: i64, state: DeviceState| {
                    conn.execute(
                        "UPDATE device_codes SET state = ?1, interval_secs = ?2, last_polled_at = ?3
                         WHERE device_digest = ?4",
                        params![state.code(), interval, now.secs(), device_code.as_bytes()],
                    )
                    .map_err(unavailable)
                };
                Ok(match verdict {
                    PollVerdict::Spent => DevicePoll::Unknown,
                    PollVerdict::Expired => DevicePoll::Expired,
                    PollVerdict::Denied => DevicePoll::Denied,
                    PollVerdict::Pending => {
                        update(interval_secs, state)?;
                        DevicePoll::Pending
                    }
                    PollVerdict::SlowDown { interval_secs } => {
                        update(interval_secs, state)?;
                        DevicePoll::SlowDown { interval_secs }
                    }
                    PollVerdict::Issue => {
                        let user_id = user_id.ok_or_else(|| {
                            StoreError::Corrupt("approved device code without a user".into())
                        })?;
                        update(interval_secs, DeviceState::Redeemed)?;
                        let grant = Grant {
                            app_id,
                            user_id: UserId(user_id),
                            scopes: Scopes::parse(&scopes),
                        };
                        start_family(conn, &grant, &pair, true, now)?;
                        DevicePoll::Issued { grant }
                    }
                })
            })
            .await
    }
}
