//! `refreshd webhook list|redeliver`: the outbox of connections' events, read and requeued
//! directly in the database.

use refreshd_core::{Clock as _, SystemClock, Timestamp};
use refreshd_store::{Delivery, DeliveryFilter, DeliveryStatus, Redelivery};
use serde_json::{Value, json};

use super::print;
use crate::Config;
use crate::cli::{DeliveryStatusArg, WebhookCommand};
use crate::server::BoxError;

pub async fn webhook(config: &Config, command: WebhookCommand) -> Result<(), BoxError> {
    let store = config.open_store().await?;
    match command {
        WebhookCommand::List {
            status,
            limit,
            output,
        } => {
            let filter = DeliveryFilter {
                status: status.map(|status| match status {
                    DeliveryStatusArg::Pending => DeliveryStatus::Pending,
                    DeliveryStatusArg::Delivered => DeliveryStatus::Delivered,
                    DeliveryStatusArg::Failed => DeliveryStatus::Failed,
                }),
                limit,
            };
            let deliveries = store.list_deliveries(&filter).await?;
            let value = Value::Array(deliveries.iter().map(delivery_json).collect());
            print(output.json, &value, || {
                if deliveries.is_empty() {
                    return "no webhook deliveries".into();
                }
                deliveries
                    .iter()
                    .map(delivery_text)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        WebhookCommand::Redeliver { id, output } => {
            let which = if id.starts_with("msg_") {
                Redelivery::Event(id.clone())
            } else {
                let number = id.parse::<i64>().map_err(|_| {
                    format!("{id:?} is neither a delivery's number nor an event's id (msg_…)")
                })?;
                Redelivery::Delivery(number)
            };
            let queued = store.redeliver(&which, SystemClock.now()).await?;
            if queued == 0 {
                return Err(format!("no webhook delivery or event {id}").into());
            }
            let value = json!({ "id": id, "queued": queued });
            print(output.json, &value, || {
                format!("queued {queued} delivery(ies) of {id} again")
            });
        }
    }
    Ok(())
}

fn rfc3339(at: Option<Timestamp>) -> Value {
    at.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at.secs()).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "type": d.kind.as_str(),
        "connection_id": d.connection_id.as_str(),
        "endpoint": refreshd_broker::endpoint_shown(&d.endpoint),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "last_attempt_at": rfc3339(d.last_attempt_at),
        "next_attempt_at": rfc3339(d.next_attempt_at),
        "delivered_at": rfc3339(d.delivered_at),
        "created_at": rfc3339(Some(d.created_at)),
    })
}

fn delivery_text(d: &Delivery) -> String {
    let shown = |v: Value| match v {
        Value::String(s) => s,
        _ => "-".into(),
    };
    let last = match (&d.last_status, &d.last_error) {
        (_, Some(error)) => error.clone(),
        (Some(status), None) => status.to_string(),
        (None, None) => "-".into(),
    };
    format!(
        "{}  {}  {}  {}  {}  attempts={}  last={last}  next={}  delivered={}  {}",
        d.id,
        d.event_id,
        d.kind.as_str(),
        d.connection_id.as_str(),
        d.status.as_str(),
        d.attempts,
        shown(rfc3339(d.next_attempt_at)),
        shown(rfc3339(d.delivered_at)),
        refreshd_broker::endpoint_shown(&d.endpoint),
    )
}
