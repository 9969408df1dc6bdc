//! The webhook outbox in SQLite. Claims and attempts run on the single writer, so no two
//! deliverers, in this process or another on the same file, claim one delivery at once.

use async_trait::async_trait;
use refreshd_core::{ConnectionId, Timestamp};
use refreshd_store::rules::webhooks::forget_at;
use refreshd_store::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, Redelivery, StoreError,
    WebhookEvent, WebhookEventKind, Webhooks,
};
use rusqlite::types::Type;
use rusqlite::{Row, params};

use super::{SqliteStore, unavailable};

const COLUMNS: &str = "id, event_id, event_type, connection_id, endpoint, payload, status,
    attempts, next_attempt_at, last_status, last_error, last_attempt_at, delivered_at,
    created_at";

fn unreadable(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, Type::Text, what.to_owned().into())
}

fn delivery_of(row: &Row) -> rusqlite::Result<Delivery> {
    let at = |column: &str| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(column)?.map(Timestamp))
    };
    let kind: String = row.get("event_type")?;
    let connection_id: String = row.get("connection_id")?;
    let status: String = row.get("status")?;
    Ok(Delivery {
        id: row.get("id")?,
        event_id: row.get("event_id")?,
        kind: WebhookEventKind::parse(&kind)
            .ok_or_else(|| unreadable("a delivery's event type is unknown"))?,
        connection_id: ConnectionId::parse(&connection_id)
            .ok_or_else(|| unreadable("a delivery's connection id breaks the rules"))?,
        endpoint: row.get("endpoint")?,
        payload: row.get("payload")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| unreadable("a delivery's status is unknown"))?,
        attempts: row.get("attempts")?,
        next_attempt_at: at("next_attempt_at")?,
        last_status: row.get("last_status")?,
        last_error: row.get("last_error")?,
        last_attempt_at: at("last_attempt_at")?,
        delivered_at: at("delivered_at")?,
        created_at: Timestamp(row.get("created_at")?),
    })
}

/// Writes `event`'s deliveries about connection `id`, one per endpoint, due at once; called in
/// the transaction of the change that caused it.
pub(crate) fn write_event(
    conn: &rusqlite::Connection,
    id: &ConnectionId,
    event: &WebhookEvent,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (event_id, event_type, connection_id, endpoint, payload,
             status, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
    )?;
    for endpoint in &event.endpoints {
        insert.execute(params![
            event.id,
            event.kind.as_str(),
            id.as_str(),
            endpoint,
            event.payload,
            event.at.secs(),
        ])?;
    }
    Ok(())
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn claim_deliveries(
        &self,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE webhook_deliveries SET claimed_by = ?1, claimed_until = ?2
                 WHERE id IN (
                     SELECT id FROM webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= ?3
                       AND (claimed_until IS NULL OR claimed_until <= ?3)
                     ORDER BY next_attempt_at LIMIT ?4)
                 RETURNING {COLUMNS}"
            )
        });
        let mut claimed = self
            .writer
            .write(move |conn| {
                let mut s = conn.prepare_cached(&SQL).map_err(unavailable)?;
                let rows = s
                    .query_map(
                        params![holder, until.secs(), now.secs(), limit.max(0)],
                        delivery_of,
                    )
                    .map_err(unavailable)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
            })
            .await?;
        claimed.sort_by_key(|d| (d.next_attempt_at, d.id));
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        id: i64,
        holder: [u8; 16],
        attempt: DeliveryAttempt,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let forget = forget_at(&attempt, now).map(Timestamp::secs);
        let (status, next, last_status, last_error, delivered_at) = match attempt {
            DeliveryAttempt::Delivered { status } => {
                ("delivered", None, Some(status), None, Some(now.secs()))
            }
            DeliveryAttempt::NotDelivered {
                status,
                error,
                retry_at,
            } => {
                let next = retry_at.map(Timestamp::secs);
                let state = if next.is_some() { "pending" } else { "failed" };
                (state, next, status, Some(error), None)
            }
        };
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE webhook_deliveries SET status = ?3, attempts = attempts + 1,
                         next_attempt_at = ?4, last_status = ?5, last_error = ?6,
                         last_attempt_at = ?7, delivered_at = ?8, forget_at = ?9,
                         claimed_by = NULL, claimed_until = NULL
                     WHERE id = ?1 AND claimed_by = ?2 AND status = 'pending'",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        holder,
                        status,
                        next,
                        last_status,
                        last_error,
                        now.secs(),
                        delivered_at,
                        forget,
                    ])
                })
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        let status = filter.status.map(DeliveryStatus::as_str);
        let limit = filter.limit.max(0);
        self.readers.read(|conn| {
            let mut s = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webhook_deliveries
                     WHERE ?1 IS NULL OR status = ?1
                     ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(unavailable)?;
            let rows = s
                .query_map(params![status, limit], delivery_of)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn redeliver(&self, which: &Redelivery, now: Timestamp) -> Result<u64, StoreError> {
        const SET: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
                               next_attempt_at = ?2, delivered_at = NULL, forget_at = NULL,
                               claimed_by = NULL, claimed_until = NULL";
        let which = which.clone();
        self.writer
            .write(move |conn| {
                let queued = match &which {
                    Redelivery::Delivery(id) => conn
                        .prepare_cached(&format!("{SET} WHERE id = ?1"))
                        .and_then(|mut s| s.execute(params![id, now.secs()])),
                    Redelivery::Event(event_id) => conn
                        .prepare_cached(&format!("{SET} WHERE event_id = ?1"))
                        .and_then(|mut s| s.execute(params![event_id, now.secs()])),
                };
                queued.map(|n| n as u64).map_err(unavailable)
            })
            .await
    }
}
