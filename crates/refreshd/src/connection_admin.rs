//! `refreshd connection list|show|refresh|delete`: connections from the command line. Listing
//! and showing read the database; refreshing and deleting go through the broker's own use
//! cases (`refresh_connection`, `delete_connection`), as the API does, with a broker built from
//! the same configuration as `serve`. Nothing here prints a token.

use std::sync::Arc;

use refreshd_broker::{Broker, ConnectionView, MasterKey};
use refreshd_core::{ConnectionId, ConnectionStatus, SystemClock, Timestamp, Upstream};
use refreshd_store::{Connection, ConnectionFilter, Store};
use serde_json::{Value, json};

use crate::Config;
use crate::admin::print;
use crate::cli::{ConnectionCommand, StatusArg, UpstreamArg};
use crate::server::BoxError;

/// Most connections read from the database at once while listing.
const PAGE: i64 = 200;

pub async fn connection(config: &Config, command: ConnectionCommand) -> Result<(), BoxError> {
    let store = config.open_store().await?;
    match command {
        ConnectionCommand::List {
            provider,
            status,
            limit,
            output,
        } => {
            let connections = list(&store, provider, status, limit).await?;
            let value = Value::Array(connections.iter().map(view).collect());
            print(output.json, &value, || {
                if connections.is_empty() {
                    return "no connections".into();
                }
                connections.iter().map(line).collect::<Vec<_>>().join("\n")
            });
        }
        ConnectionCommand::Show { id, output } => {
            let connection = find(&store, &id).await?;
            print(output.json, &view(&connection), || details(&connection));
        }
        ConnectionCommand::Refresh { id, output } => {
            // Looked up first, so an unknown id is told as such whatever the configuration.
            let id = find(&store, &id).await?.id;
            let broker = broker(config, store).await?;
            let connection = refreshd_broker::refresh_connection(&broker, &id).await?;
            // Backing off, it answers with the stored token and no refresh: say so.
            if connection.status != ConnectionStatus::Live {
                return Err(format!(
                    "connection {id} was not refreshed: it is {} until {} after: {}",
                    connection.status.as_str(),
                    when(connection.retry_after),
                    connection
                        .last_error
                        .as_deref()
                        .unwrap_or("a failed refresh")
                )
                .into());
            }
            print(output.json, &view(&connection), || {
                format!(
                    "refreshed {}; its access token expires {}",
                    connection.id,
                    when(connection.tokens.access_expires_at)
                )
            });
        }
        ConnectionCommand::Delete { id, output } => {
            let connection = find(&store, &id).await?;
            let broker = broker(config, store).await?;
            let revoked = refreshd_broker::delete_connection(&broker, &connection.id).await?;
            let mut value = json!({
                "connectionId": connection.id.as_str(),
                "deleted": true,
                "upstreamRevoked": revoked.is_ok(),
            });
            if let Err(why) = &revoked {
                value["upstreamError"] = json!(why);
            }
            let upstream = connection.upstream.as_str();
            print(output.json, &value, || match &revoked {
                Ok(()) => format!("deleted {}; {upstream} revoked its grant", connection.id),
                Err(why) => format!(
                    "deleted {}; {upstream} did not revoke its grant: {why}",
                    connection.id
                ),
            });
        }
    }
    Ok(())
}

/// A broker as `serve` builds it: the configured upstreams and master key.
async fn broker(config: &Config, store: Arc<dyn Store>) -> Result<Broker, BoxError> {
    let shared_database = crate::store::is_postgres(config.database_url.expose());
    let master_key = MasterKey::load(
        config.master_key.as_ref(),
        &config.master_key_path(),
        !shared_database,
    )?;
    Ok(Broker::new(
        store,
        Arc::new(SystemClock),
        config.broker_settings(),
        master_key,
    )?)
}

async fn find(store: &Arc<dyn Store>, id: &str) -> Result<Connection, BoxError> {
    let parsed = ConnectionId::parse(id).ok_or_else(|| {
        format!("{id:?} is not a connection id: 1-128 characters of A-Z a-z 0-9 - _ . ~")
    })?;
    Ok(store
        .find_connection(&parsed)
        .await?
        .ok_or_else(|| format!("there is no connection {id:?}"))?)
}

/// Connections in id order, page by page, at most `limit`.
async fn list(
    store: &Arc<dyn Store>,
    provider: Option<UpstreamArg>,
    status: Option<StatusArg>,
    limit: Option<i64>,
) -> Result<Vec<Connection>, BoxError> {
    let upstream = provider.map(|p| match p {
        UpstreamArg::Github => Upstream::Github,
        UpstreamArg::Google => Upstream::Google,
    });
    let status = status.map(|s| match s {
        StatusArg::Live => ConnectionStatus::Live,
        StatusArg::Broken => ConnectionStatus::Broken,
        StatusArg::BackingOff => ConnectionStatus::BackingOff,
    });
    let mut all: Vec<Connection> = Vec::new();
    loop {
        let wanted = limit.map_or(PAGE, |limit| (limit - all.len() as i64).min(PAGE));
        let filter = ConnectionFilter {
            upstream,
            status,
            after: all.last().map(|c| c.id.clone()),
            limit: wanted,
        };
        let page = store.list_connections(&filter).await?;
        let last_page = (page.len() as i64) < wanted;
        all.extend(page);
        if last_page || limit.is_some_and(|limit| all.len() as i64 >= limit) {
            return Ok(all);
        }
    }
}

/// A connection as `GET /connections/{id}` shows it.
fn view(connection: &Connection) -> Value {
    serde_json::to_value(ConnectionView::from(connection)).unwrap_or(Value::Null)
}

fn when(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "never".into(), iso8601)
}

/// UTC, whole seconds.
fn iso8601(at: Timestamp) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(at.secs())
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| at.secs().to_string())
}

fn line(c: &Connection) -> String {
    let mut line = format!(
        "{}  {}  {}  expires {}  failures {}",
        c.id,
        c.upstream.as_str(),
        c.status.as_str(),
        when(c.tokens.access_expires_at),
        c.failure_count
    );
    if let Some(error) = &c.last_error {
        line.push_str(&format!("  last error: {error}"));
    }
    line
}

fn details(c: &Connection) -> String {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    let rows = [
        ("connection", c.id.to_string()),
        ("provider", c.upstream.as_str().to_owned()),
        ("status", c.status.as_str().to_owned()),
        ("scopes", c.tokens.scopes.as_slice().join(" ")),
        ("expires", when(c.tokens.access_expires_at)),
        (
            "refresh token expires",
            match &c.tokens.refresh {
                Some(_) => when(c.tokens.refresh_expires_at),
                None => "- (no refresh token)".into(),
            },
        ),
        ("last refreshed", iso8601(c.last_refreshed_at)),
        ("next refresh", optional(c.next_refresh_at.map(iso8601))),
        ("failures", c.failure_count.to_string()),
        ("last error", optional(c.last_error.clone())),
        ("retry after", optional(c.retry_after.map(iso8601))),
        ("metadata", optional(c.metadata.clone())),
        ("created", iso8601(c.created_at)),
        ("updated", iso8601(c.updated_at)),
    ];
    rows.iter()
        .map(|(name, value)| format!("{:<23}{value}", format!("{name}:")))
        .collect::<Vec<_>>()
        .join("\n")
}
