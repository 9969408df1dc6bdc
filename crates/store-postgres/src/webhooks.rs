//! The webhook outbox in PostgreSQL, correct across instances: `claim_deliveries` is one
//! statement whose `FOR UPDATE SKIP LOCKED` lets deliverers claim side by side without ever
//! taking the same row, and an event's deliveries are written by the very statement that
//! changes the connection (`announcing`), so they commit with it or not at all.

use async_trait::async_trait;
use refreshd_core::{ConnectionId, Timestamp};
use refreshd_store::rules::webhooks::forget_at;
use refreshd_store::{
    Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, Redelivery, StoreError,
    WebhookEventKind, Webhooks,
};
use tokio_postgres::Row;

use super::{Column, PostgresStore, execute, query};

const COLUMNS: &str = "id, event_id, event_type, connection_id, endpoint, payload, status,
    attempts, next_attempt_at, last_status, last_error, last_attempt_at, delivered_at,
    created_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn delivery_of(row: &Row) -> Result<Delivery, StoreError> {
    let at = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row.col::<_, Option<i64>>(column)?.map(Timestamp))
    };
    Ok(Delivery {
        id: row.col("id")?,
        event_id: row.col("event_id")?,
        kind: WebhookEventKind::parse(row.col("event_type")?)
            .ok_or_else(|| corrupt("a delivery's event type is unknown"))?,
        connection_id: ConnectionId::parse(row.col("connection_id")?)
            .ok_or_else(|| corrupt("a delivery's connection id breaks the rules"))?,
        endpoint: row.col("endpoint")?,
        payload: row.col("payload")?,
        status: DeliveryStatus::parse(row.col("status")?)
            .ok_or_else(|| corrupt("a delivery's status is unknown"))?,
        attempts: row.col("attempts")?,
        next_attempt_at: at("next_attempt_at")?,
        last_status: row.col("last_status")?,
        last_error: row.col("last_error")?,
        last_attempt_at: at("last_attempt_at")?,
        delivered_at: at("delivered_at")?,
        created_at: Timestamp(row.col("created_at")?),
    })
}

fn deliveries_of(rows: Vec<Row>) -> Result<Vec<Delivery>, StoreError> {
    rows.iter().map(delivery_of).collect()
}

/// `change` (a statement changing one connection, `RETURNING` its `columns`) that also writes
/// an event's deliveries, one per endpoint, if it changed a row: one statement, so they commit
/// together. The event's parameters follow the change's, from `$first`: its id, type, payload,
/// endpoints (an array) and moment.
pub(crate) fn announcing(change: &str, first: usize, columns: &str) -> String {
    let [id, kind, payload, endpoints, at] = [0, 1, 2, 3, 4].map(|n| first + n);
    format!(
        "WITH changed AS ({change}),
         announced AS (
             INSERT INTO webhook_deliveries (event_id, event_type, connection_id, endpoint,
                 payload, status, attempts, next_attempt_at, created_at)
             SELECT ${id}::text, ${kind}::text, changed.id, endpoint, ${payload}::text,
                 'pending', 0, ${at}::bigint, ${at}::bigint
             FROM changed, unnest(${endpoints}::text[]) AS endpoint)
         SELECT {columns} FROM changed"
    )
}

#[async_trait]
impl Webhooks for PostgresStore {
    async fn claim_deliveries(
        &self,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        // As `Connections::claim_due`: rows another deliverer locked are skipped, and one
        // claimed and committed since this statement began is re-checked against its claim.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2
                 WHERE id = ANY (ARRAY(
                     SELECT id FROM webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= $3
                       AND (claimed_until IS NULL OR claimed_until <= $3)
                     ORDER BY next_attempt_at LIMIT $4
                     FOR UPDATE SKIP LOCKED))
                 RETURNING {COLUMNS}"
            )
        });
        let rows = query(
            &self.client().await?,
            &SQL,
            &[
                &holder.as_slice(),
                &until.secs(),
                &now.secs(),
                &limit.max(0),
            ],
        )
        .await?;
        let mut claimed = deliveries_of(rows)?;
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
        let recorded = execute(
            &self.client().await?,
            "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1,
                 next_attempt_at = $4, last_status = $5, last_error = $6,
                 last_attempt_at = $7, delivered_at = $8, forget_at = $9,
                 claimed_by = NULL, claimed_until = NULL
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
            &[
                &id,
                &holder.as_slice(),
                &status,
                &next,
                &last_status,
                &last_error,
                &now.secs(),
                &delivered_at,
                &forget,
            ],
        )
        .await?;
        Ok(recorded > 0)
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM webhook_deliveries
                 WHERE $1::text IS NULL OR status = $1
                 ORDER BY id DESC LIMIT $2"
            )
        });
        let status = filter.status.map(DeliveryStatus::as_str);
        let rows = query(
            &self.client().await?,
            &SQL,
            &[&status, &filter.limit.max(0)],
        )
        .await?;
        deliveries_of(rows)
    }

    async fn redeliver(&self, which: &Redelivery, now: Timestamp) -> Result<u64, StoreError> {
        const SET: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
                               next_attempt_at = $2, delivered_at = NULL, forget_at = NULL,
                               claimed_by = NULL, claimed_until = NULL";
        let client = self.client().await?;
        let queued = match which {
            Redelivery::Delivery(id) => {
                execute(&client, &format!("{SET} WHERE id = $1"), &[id, &now.secs()]).await?
            }
            Redelivery::Event(event_id) => {
                execute(
                    &client,
                    &format!("{SET} WHERE event_id = $1"),
                    &[event_id, &now.secs()],
                )
                .await?
            }
        };
        Ok(queued)
    }
}
