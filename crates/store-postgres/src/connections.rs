//! Connections in PostgreSQL, correct across instances: a version check is one conditional
//! `UPDATE` (concurrent ones take turns on the row lock, and the loser re-checks the version
//! against the winner's commit), and `claim_due` one statement whose `FOR UPDATE SKIP LOCKED`
//! lets instances claim side by side without ever taking the same row.

use async_trait::async_trait;
use refreshd_core::{ConnectionId, ConnectionStatus, Scopes, SealedToken, Timestamp, Upstream};
use refreshd_store::rules::connections::{after_failure, claim_in_the_way};
use refreshd_store::{
    ClaimAttempt, Connection, ConnectionFilter, ConnectionTokens, Connections, Failure,
    NewConnection, StoreError, WebhookEvent,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::webhooks::announcing;
use super::{Column, Pg, PostgresStore, execute, query, query_opt};

const COLUMNS: &str = "id, upstream, status, scopes, access_sealed, access_expires_at,
    refresh_sealed, refresh_expires_at, last_refreshed_at, next_refresh_at, failure_count,
    last_error, retry_after, claimed_until, metadata, version, created_at, updated_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn connection_of(row: &Row) -> Result<Connection, StoreError> {
    let at = |column: &str| -> Result<Option<Timestamp>, Pg> {
        Ok(row.col::<_, Option<i64>>(column)?.map(Timestamp))
    };
    Ok(Connection {
        id: ConnectionId::parse(row.col("id")?)
            .ok_or_else(|| corrupt("a stored connection id breaks the rules"))?,
        upstream: Upstream::parse(row.col("upstream")?)
            .ok_or_else(|| corrupt("a connection's upstream is unknown"))?,
        status: ConnectionStatus::parse(row.col("status")?)
            .ok_or_else(|| corrupt("a connection's status is unknown"))?,
        tokens: ConnectionTokens {
            access: SealedToken::from_stored(row.col("access_sealed")?),
            access_expires_at: at("access_expires_at")?,
            refresh: row
                .col::<_, Option<Vec<u8>>>("refresh_sealed")?
                .map(SealedToken::from_stored),
            refresh_expires_at: at("refresh_expires_at")?,
            scopes: Scopes::parse(row.col("scopes")?),
        },
        last_refreshed_at: Timestamp(row.col("last_refreshed_at")?),
        next_refresh_at: at("next_refresh_at")?,
        failure_count: row.col("failure_count")?,
        last_error: row.col("last_error")?,
        retry_after: at("retry_after")?,
        claimed_until: at("claimed_until")?,
        metadata: row.col("metadata")?,
        version: row.col("version")?,
        created_at: Timestamp(row.col("created_at")?),
        updated_at: Timestamp(row.col("updated_at")?),
    })
}

fn connections_of(rows: Vec<Row>) -> Result<Vec<Connection>, StoreError> {
    rows.iter().map(connection_of).collect()
}

fn secs(at: Option<Timestamp>) -> Option<i64> {
    at.map(Timestamp::secs)
}

fn refresh_bytes(tokens: &ConnectionTokens) -> Option<&[u8]> {
    tokens.refresh.as_ref().map(SealedToken::as_bytes)
}

/// An event's values as parameters of `webhooks::announcing`'s statement.
struct Announced<'a> {
    event: &'a WebhookEvent,
    kind: &'static str,
    at: i64,
}

impl<'a> Announced<'a> {
    fn of(event: &'a WebhookEvent) -> Self {
        Self {
            event,
            kind: event.kind.as_str(),
            at: event.at.secs(),
        }
    }

    /// Appends the event's parameters, in `announcing`'s order.
    fn push<'s>(&'s self, params: &mut Vec<&'s (dyn ToSql + Sync)>) {
        params.extend([
            &self.event.id as &(dyn ToSql + Sync),
            &self.kind,
            &self.event.payload,
            &self.event.endpoints,
            &self.at,
        ]);
    }
}

/// What a listing is filtered by, as values a statement can borrow.
struct Listing {
    after: String,
    upstream: Option<&'static str>,
    status: Option<&'static str>,
    limit: i64,
}

impl Listing {
    fn of(filter: &ConnectionFilter) -> Self {
        Self {
            after: filter
                .after
                .as_ref()
                .map_or_else(String::new, |id| id.as_str().to_owned()),
            upstream: filter.upstream.map(Upstream::as_str),
            status: filter.status.map(ConnectionStatus::as_str),
            limit: filter.limit.max(0),
        }
    }

    /// The `SELECT`, written for the filters there are (so each can use its index), and its
    /// parameters.
    fn statement(&self) -> (String, Vec<&(dyn ToSql + Sync)>) {
        let mut sql = format!("SELECT {COLUMNS} FROM connections WHERE id > $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.after];
        if let Some(upstream) = &self.upstream {
            params.push(upstream);
            sql.push_str(&format!(" AND upstream = ${}", params.len()));
        }
        if let Some(status) = &self.status {
            params.push(status);
            sql.push_str(&format!(" AND status = ${}", params.len()));
        }
        params.push(&self.limit);
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", params.len()));
        (sql, params)
    }
}

impl PostgresStore {
    /// Runs `plain` with `params`, or, with an event, `announcing` (`webhooks::announcing`:
    /// the event inserted in the same statement, if the write happens) with the event's
    /// parameters after them; the connection as the statement returned it.
    async fn write_connection(
        &self,
        plain: &str,
        announcing: &str,
        params: Vec<&(dyn ToSql + Sync)>,
        event: Option<&WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError> {
        let announced = event.map(Announced::of);
        let mut params = params;
        let sql = match &announced {
            None => plain,
            Some(a) => {
                a.push(&mut params);
                announcing
            }
        };
        let row = query_opt(&self.client().await?, sql, &params).await?;
        row.as_ref().map(connection_of).transpose()
    }
}

#[async_trait]
impl Connections for PostgresStore {
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
                 VALUES ($1, $2, 'live', $3, $4, $5, $6, $7, $8, $9, 0, $10,
                     nextval('connection_versions'), $8, $8)
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
        let t = &new.tokens;
        let row = query_opt(
            &self.client().await?,
            &SQL,
            &[
                &new.id.as_str(),
                &new.upstream.as_str(),
                &t.scopes.to_github(),
                &t.access.as_bytes(),
                &secs(t.access_expires_at),
                &refresh_bytes(t),
                &secs(t.refresh_expires_at),
                &now.secs(),
                &secs(new.next_refresh_at),
                &new.metadata,
            ],
        )
        .await?;
        connection_of(&row.ok_or_else(|| corrupt("a put connection was not returned"))?)
    }

    async fn find_connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM connections WHERE id = $1"));
        let row = query_opt(&self.client().await?, &SQL, &[&id.as_str()]).await?;
        row.as_ref().map(connection_of).transpose()
    }

    async fn list_connections(
        &self,
        filter: &ConnectionFilter,
    ) -> Result<Vec<Connection>, StoreError> {
        let listing = Listing::of(filter);
        let (sql, params) = listing.statement();
        let rows = query(&self.client().await?, &sql, &params).await?;
        connections_of(rows)
    }

    async fn delete_connection(
        &self,
        id: &ConnectionId,
        expected_version: Option<i64>,
        event: Option<WebhookEvent>,
    ) -> Result<Option<Connection>, StoreError> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "DELETE FROM connections WHERE id = $1 AND ($2::bigint IS NULL OR version = $2)
                 RETURNING {COLUMNS}"
            )
        });
        static ANNOUNCING: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| announcing(&SQL, 3, COLUMNS));
        let id = id.as_str();
        self.write_connection(
            &SQL,
            &ANNOUNCING,
            vec![&id, &expected_version],
            event.as_ref(),
        )
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
                "UPDATE connections SET status = 'live', scopes = $3, access_sealed = $4,
                     access_expires_at = $5, refresh_sealed = $6, refresh_expires_at = $7,
                     last_refreshed_at = $8, next_refresh_at = $9, failure_count = 0,
                     last_error = NULL, retry_after = NULL, claimed_by = NULL,
                     claimed_until = NULL, version = nextval('connection_versions'),
                     updated_at = $8
                 WHERE id = $1 AND version = $2
                 RETURNING {COLUMNS}"
            )
        });
        static ANNOUNCING: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| announcing(&SQL, 10, COLUMNS));
        let (scopes, access_expires_at) =
            (tokens.scopes.to_github(), secs(tokens.access_expires_at));
        let (refresh_expires_at, at) = (secs(tokens.refresh_expires_at), now.secs());
        let next_refresh_at = secs(next_refresh_at);
        let (id, access, refresh) = (
            id.as_str(),
            tokens.access.as_bytes(),
            refresh_bytes(&tokens),
        );
        let params: Vec<&(dyn ToSql + Sync)> = vec![
            &id,
            &expected_version,
            &scopes,
            &access,
            &access_expires_at,
            &refresh,
            &refresh_expires_at,
            &at,
            &next_refresh_at,
        ];
        self.write_connection(&SQL, &ANNOUNCING, params, event.as_ref())
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
                "UPDATE connections SET status = $3, last_error = $4, retry_after = $5,
                     next_refresh_at = $6, failure_count = failure_count + 1,
                     claimed_by = NULL, claimed_until = NULL,
                     version = nextval('connection_versions'), updated_at = $7
                 WHERE id = $1 AND version = $2
                 RETURNING {COLUMNS}"
            )
        });
        static ANNOUNCING: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| announcing(&SQL, 8, COLUMNS));
        let after = after_failure(&failure);
        let (retry_after, next_refresh_at) = (secs(after.retry_after), secs(after.next_refresh_at));
        let (id, at, status) = (id.as_str(), now.secs(), after.status.as_str());
        let params: Vec<&(dyn ToSql + Sync)> = vec![
            &id,
            &expected_version,
            &status,
            &after.last_error,
            &retry_after,
            &next_refresh_at,
            &at,
        ];
        self.write_connection(&SQL, &ANNOUNCING, params, event.as_ref())
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
        // One statement: the due rows are locked as they are found, rows another claimant has
        // locked are skipped rather than waited for, and a row another claimant claimed and
        // committed since this statement began is re-checked against its claim (and so left
        // out). The ids go through an array so that the update finds its rows by primary key
        // (a join may scan the whole table). `status <> 'broken'` is spelled as the partial
        // index's literal, so the index serves the search.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "UPDATE connections SET claimed_by = $1, claimed_until = $2
                 WHERE id = ANY (ARRAY(
                     SELECT id FROM connections
                     WHERE next_refresh_at <= $3 AND status <> 'broken'
                       AND (retry_after IS NULL OR retry_after <= $3)
                       AND (claimed_until IS NULL OR claimed_until <= $3)
                       AND upstream = ANY ($5)
                     ORDER BY next_refresh_at LIMIT $4
                     FOR UPDATE SKIP LOCKED))
                 RETURNING {COLUMNS}"
            )
        });
        let upstreams: Vec<&str> = upstreams.iter().map(|u| u.as_str()).collect();
        let rows = query(
            &self.client().await?,
            &SQL,
            &[
                &holder.as_slice(),
                &until.secs(),
                &now.secs(),
                &limit.max(0),
                &upstreams,
            ],
        )
        .await?;
        let mut claimed = connections_of(rows)?;
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
                "UPDATE connections SET claimed_by = $2, claimed_until = $3 WHERE id = $1
                 RETURNING {COLUMNS}"
            )
        });
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        // The row stays locked to the end, so the claim read is the claim replaced.
        let claim = query_opt(
            &tx,
            "SELECT claimed_by, claimed_until FROM connections WHERE id = $1 FOR UPDATE",
            &[&id.as_str()],
        )
        .await?;
        let Some(claim) = claim else {
            return Ok(ClaimAttempt::Missing);
        };
        let claimed_by: Option<&[u8]> = claim.col("claimed_by")?;
        let claimed_until = claim.col::<_, Option<i64>>("claimed_until")?.map(Timestamp);
        if let Some(until) = claim_in_the_way(claimed_by, claimed_until, &holder, now) {
            return Ok(ClaimAttempt::Held { until });
        }
        let row = query_opt(
            &tx,
            &SQL,
            &[&id.as_str(), &holder.as_slice(), &until.secs()],
        )
        .await?
        .ok_or_else(|| corrupt("a locked connection vanished"))?;
        let claimed = connection_of(&row)?;
        tx.commit().await.map_err(Pg)?;
        Ok(ClaimAttempt::Claimed(Box::new(claimed)))
    }

    async fn renew_claim(
        &self,
        id: &ConnectionId,
        holder: [u8; 16],
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let renewed = execute(
            &self.client().await?,
            "UPDATE connections SET claimed_until = GREATEST(claimed_until, $3)
             WHERE id = $1 AND claimed_by = $2",
            &[&id.as_str(), &holder.as_slice(), &until.secs()],
        )
        .await?;
        Ok(renewed > 0)
    }

    async fn release_claim(&self, id: &ConnectionId, holder: [u8; 16]) -> Result<bool, StoreError> {
        let released = execute(
            &self.client().await?,
            "UPDATE connections SET claimed_by = NULL, claimed_until = NULL
             WHERE id = $1 AND claimed_by = $2",
            &[&id.as_str(), &holder.as_slice()],
        )
        .await?;
        Ok(released > 0)
    }
}
