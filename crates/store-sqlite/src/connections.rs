//! Connections in SQLite. Every write runs on the single writer, so a version check or a
//! claim is decided with no other write between its read and its update; the transaction
//! starts `IMMEDIATE`, which holds as well against another process on the same file.

use async_trait::async_trait;
use refreshd_core::{ConnectionId, ConnectionStatus, Scopes, SealedToken, Timestamp, Upstream};
use refreshd_store::rules::connections::{after_failure, claim_in_the_way};
use refreshd_store::{
    ClaimAttempt, Connection, ConnectionFilter, ConnectionTokens, Connections, Failure,
    NewConnection, StoreError, WebhookEvent,
};
use rusqlite::types::{ToSql, Type};
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use super::webhooks::write_event;
use super::{SqliteStore, unavailable};

const COLUMNS: &str = "id, upstream, status, scopes, access_sealed, access_expires_at,
    refresh_sealed, refresh_expires_at, last_refreshed_at, next_refresh_at, failure_count,
    last_error, retry_after, claimed_until, metadata, version, created_at, updated_at";

fn unreadable(ty: Type, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, ty, what.to_owned().into())
}

fn connection_of(row: &Row) -> rusqlite::Result<Connection> {
    let at = |column: &str| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(column)?.map(Timestamp))
    };
    let id: String = row.get("id")?;
    let upstream: String = row.get("upstream")?;
    let status: String = row.get("status")?;
    Ok(Connection {
        id: ConnectionId::parse(&id)
            .ok_or_else(|| unreadable(Type::Text, "a stored connection id breaks the rules"))?,
        upstream: Upstream::parse(&upstream)
            .ok_or_else(|| unreadable(Type::Text, "a connection's upstream is unknown"))?,
        status: ConnectionStatus::parse(&status)
            .ok_or_else(|| unreadable(Type::Text, "a connection's status is unknown"))?,
        tokens: ConnectionTokens {
            access: SealedToken::from_stored(row.get("access_sealed")?),
            access_expires_at: at("access_expires_at")?,
            refresh: row
                .get::<_, Option<Vec<u8>>>("refresh_sealed")?
                .map(SealedToken::from_stored),
            refresh_expires_at: at("refresh_expires_at")?,
            scopes: Scopes::parse(&row.get::<_, String>("scopes")?),
        },
        last_refreshed_at: Timestamp(row.get("last_refreshed_at")?),
        next_refresh_at: at("next_refresh_at")?,
        failure_count: row.get("failure_count")?,
        last_error: row.get("last_error")?,
        retry_after: at("retry_after")?,
        claimed_until: at("claimed_until")?,
        metadata: row.get("metadata")?,
        version: row.get("version")?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
    })
}

/// The next version of any connection: one counter for all, so none repeats for an id.
fn next_version(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("UPDATE connection_versions SET last = last + 1 RETURNING last")?
        .query_row([], |r| r.get(0))
}

fn secs(at: Option<Timestamp>) -> Option<i64> {
    at.map(Timestamp::secs)
}

fn refresh_bytes(tokens: &ConnectionTokens) -> Option<&[u8]> {
    tokens.refresh.as_ref().map(SealedToken::as_bytes)
}

/// Runs `sql`, a change of one connection that returns its columns, with `params`; if it
/// changed one, writes `event`'s deliveries in the same transaction, so the event exists
/// exactly when the change commits. The connection as changed.
fn change_announced(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    event: Option<&WebhookEvent>,
) -> Result<Option<Connection>, StoreError> {
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, connection_of).optional())
        .map_err(unavailable)?;
    if let (Some(changed), Some(event)) = (&changed, event) {
        write_event(conn, &changed.id, event).map_err(unavailable)?;
    }
    Ok(changed)
}

/// `SELECT` of the connections `filter` picks, written for the filters it has, so each can use
/// its index; and its parameters.
fn listing(filter: &ConnectionFilter) -> (String, Vec<Box<dyn ToSql + Send>>) {
    let mut sql = format!("SELECT {COLUMNS} FROM connections WHERE id > ?");
    let after = filter.after.as_ref().map_or("", ConnectionId::as_str);
    let mut params: Vec<Box<dyn ToSql + Send>> = vec![Box::new(after.to_owned())];
    if let Some(upstream) = filter.upstream {
        sql.push_str(" AND upstream = ?");
        params.push(Box::new(upstream.as_str()));
    }
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        params.push(Box::new(status.as_str()));
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    params.push(Box::new(filter.limit.max(0)));
    (sql, params)
}

#[async_trait]
impl Connections for SqliteStore {
    async fn put_connection(
        &self,
        new: NewConnection,
        now: Timestamp,
    ) -> Result<Connection, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "INSERT INTO connections (id, upstream, status, scopes, access_sealed,
                     access_expires_at, refresh_sealed, refresh_expires_at, last_refreshed_at,
                     next_refresh_at, failure_count, metadata, version, created_at, updated_at)
                 VALUES (?1, ?2, 'live', ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?8, ?8)
                 ON CONFLICT (id) DO UPDATE SET upstream = excluded.upstream, status = 'live',
                     scopes = excluded.scopes, access_sealed = excluded.access_sealed,
                     access_expires_at = excluded.access_expires_at,
                     refresh_sealed = excluded.refresh_sealed,
                     refresh_expires_at = excluded.refresh_expires_at,
                     last_refreshed_at = excluded.last_refreshed_at,
                     next_refresh_at = excluded.next_refresh_at, failure_count = 0,
                     last_error = NULL, retry_after = NULL, claimed_by = NULL,
                     claimed_until = NULL, metadata = excluded.metadata,
                     version = excluded.version, updated_at = excluded.updated_at
                 RETURNING {COLUMNS}"
            )
        });
        self.writer
            .write(move |conn| {
                let version = next_version(conn).map_err(unavailable)?;
                let t = &new.tokens;
                conn.prepare_cached(&SQL)
                    .and_then(|mut s| {
                        s.query_row(
                            params![
                                new.id.as_str(),
                                new.upstream.as_str(),
                                t.scopes.to_github(),
                                t.access.as_bytes(),
                                secs(t.access_expires_at),
                                refresh_bytes(t),
                                secs(t.refresh_expires_at),
                                now.secs(),
                                secs(new.next_refresh_at),
                                new.metadata,
                                version,
                            ],
                            connection_of,
                        )
                    })
                    .map_err(unavailable)
            })
            .await
    }

    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        self.readers.read(|conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM connections WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id.as_str()], connection_of).optional())
                .map_err(unavailable)
        })
    }

    async fn list_connections(
        &self,
        filter: &ConnectionFilter,
    ) -> Result<Vec<Connection>, StoreError> {
        let (sql, params) = listing(filter);
        self.readers.read(|conn| {
            let mut s = conn.prepare_cached(&sql).map_err(unavailable)?;
            let rows = s
                .query_map(params_from_iter(params.iter()), connection_of)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
    }

    async fn delete_connection(
        &self,
        id: &ConnectionId,
        expected_version: Option<i64>,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "DELETE FROM connections WHERE id = ?1 AND (?2 IS NULL OR version = ?2)
                 RETURNING {COLUMNS}"
            )
        });
        let id = id.clone();
        self.writer
            .write(move |conn| {
                let params = params![id.as_str(), expected_version];
                change_announced(conn, &SQL, params, event.as_ref())
            })
            .await
    }

    async fn save_refresh(
        &self,
        id: &ConnectionId,
        expected_version: i64,
        tokens: ConnectionTokens,
        next_refresh_at: Option<Timestamp>,
        now: Timestamp,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE connections SET status = 'live', scopes = ?3, access_sealed = ?4,
                     access_expires_at = ?5, refresh_sealed = ?6, refresh_expires_at = ?7,
                     last_refreshed_at = ?8, next_refresh_at = ?9, failure_count = 0,
                     last_error = NULL, retry_after = NULL, claimed_by = NULL,
                     claimed_until = NULL, version = ?10, updated_at = ?8
                 WHERE id = ?1 AND version = ?2
                 RETURNING {COLUMNS}"
            )
        });
        let id = id.clone();
        self.writer
            .write(move |conn| {
                let version = next_version(conn).map_err(unavailable)?;
                let params = params![
                    id.as_str(),
                    expected_version,
                    tokens.scopes.to_github(),
                    tokens.access.as_bytes(),
                    secs(tokens.access_expires_at),
                    refresh_bytes(&tokens),
                    secs(tokens.refresh_expires_at),
                    now.secs(),
                    secs(next_refresh_at),
                    version,
                ];
                change_announced(conn, &SQL, params, event.as_ref())
            })
            .await
    }

    async fn record_failure(
        &self,
        id: &ConnectionId,
        expected_version: i64,
        failure: Failure,
        now: Timestamp,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE connections SET status = ?3, last_error = ?4, retry_after = ?5,
                     next_refresh_at = ?6, failure_count = failure_count + 1,
                     claimed_by = NULL, claimed_until = NULL, version = ?7, updated_at = ?8
                 WHERE id = ?1 AND version = ?2
                 RETURNING {COLUMNS}"
            )
        });
        let id = id.clone();
        let after = after_failure(&failure);
        self.writer
            .write(move |conn| {
                let version = next_version(conn).map_err(unavailable)?;
                let params = params![
                    id.as_str(),
                    expected_version,
                    after.status.as_str(),
                    after.last_error,
                    secs(after.retry_after),
                    secs(after.next_refresh_at),
                    version,
                    now.secs(),
                ];
                change_announced(conn, &SQL, params, event.as_ref())
            })
            .await
    }

    async fn claim_due(
        &self,
        upstreams: &[Upstream],
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Connection>, StoreError> {
        // At most the two upstreams, as two parameters (the first repeated for one).
        let (Some(first), last) = (upstreams.first(), upstreams.last()) else {
            return Ok(Vec::new());
        };
        let pair = [first.as_str(), last.unwrap_or(first).as_str()];
        // `status <> 'broken'` is spelled as the index's literal, so the partial index of due
        // connections serves the search; `+upstream` keeps the planner off the upstream index
        // (which would read every connection of the upstream, then sort them).
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE connections SET claimed_by = ?1, claimed_until = ?2
                 WHERE id IN (
                     SELECT id FROM connections
                     WHERE next_refresh_at <= ?3 AND status <> 'broken'
                       AND (retry_after IS NULL OR retry_after <= ?3)
                       AND (claimed_until IS NULL OR claimed_until <= ?3)
                       AND +upstream IN (?5, ?6)
                     ORDER BY next_refresh_at LIMIT ?4)
                 RETURNING {COLUMNS}"
            )
        });
        let mut claimed = self
            .writer
            .write(move |conn| {
                let mut s = conn.prepare_cached(&SQL).map_err(unavailable)?;
                let rows = s
                    .query_map(
                        params![
                            holder,
                            until.secs(),
                            now.secs(),
                            limit.max(0),
                            pair[0],
                            pair[1]
                        ],
                        connection_of,
                    )
                    .map_err(unavailable)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
            })
            .await?;
        claimed.sort_by(|a, b| (a.next_refresh_at, &a.id).cmp(&(b.next_refresh_at, &b.id)));
        Ok(claimed)
    }

    async fn claim_connection(
        &self,
        id: &ConnectionId,
        holder: [u8; 16],
        until: Timestamp,
        now: Timestamp,
    ) -> Result<ClaimAttempt, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE connections SET claimed_by = ?2, claimed_until = ?3 WHERE id = ?1
                 RETURNING {COLUMNS}"
            )
        });
        let id = id.clone();
        self.writer
            .write(move |conn| {
                let claim = conn
                    .prepare_cached(
                        "SELECT claimed_by, claimed_until FROM connections WHERE id = ?1",
                    )
                    .and_then(|mut s| {
                        s.query_row([id.as_str()], |r| {
                            Ok((
                                r.get::<_, Option<Vec<u8>>>(0)?,
                                r.get::<_, Option<i64>>(1)?.map(Timestamp),
                            ))
                        })
                        .optional()
                    })
                    .map_err(unavailable)?;
                let Some((claimed_by, claimed_until)) = claim else {
                    return Ok(ClaimAttempt::Missing);
                };
                if let Some(until) =
                    claim_in_the_way(claimed_by.as_deref(), claimed_until, &holder, now)
                {
                    return Ok(ClaimAttempt::Held { until });
                }
                conn.prepare_cached(&SQL)
                    .and_then(|mut s| {
                        s.query_row(params![id.as_str(), holder, until.secs()], connection_of)
                    })
                    .map(|claimed| ClaimAttempt::Claimed(Box::new(claimed)))
                    .map_err(unavailable)
            })
            .await
    }

    async fn renew_claim(
        &self,
        id: &ConnectionId,
        holder: [u8; 16],
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE connections SET claimed_until = max(coalesce(claimed_until, ?3), ?3)
                     WHERE id = ?1 AND claimed_by = ?2",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), holder, until.secs()]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }

    async fn release_claim(&self, id: &ConnectionId, holder: [u8; 16]) -> Result<bool, StoreError> {
        let id = id.clone();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE connections SET claimed_by = NULL, claimed_until = NULL
                     WHERE id = ?1 AND claimed_by = ?2",
                )
                .and_then(|mut s| s.execute(params![id.as_str(), holder]))
                .map(|n| n > 0)
                .map_err(unavailable)
            })
            .await
    }
}
