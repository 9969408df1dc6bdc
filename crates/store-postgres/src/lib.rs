//! PostgreSQL, for several refreshd instances on one database: a pool of connections, every
//! rule that must hold across instances kept by one conditional statement or transaction.
//!
//! A lost connection (the database restarting, say) fails the requests that needed it with
//! `StoreError::Unavailable`; the pool replaces broken connections on the next checkout, so
//! refreshd recovers without a restart once the database is back.

/// That the `token_pairs` row being changed belongs to a live family of app `$2`, with the
/// family looked up by primary key. A macro so that constant statements can include it.
macro_rules! of_live_family {
    () => {
        "(SELECT f.app_id = $2 AND f.revoked_at IS NULL
          FROM families f WHERE f.id = token_pairs.family_id)"
    };
}

mod access_tokens;
mod apps;
mod attempts;
mod callers;
mod codes;
mod connections;
mod consents;
mod device_codes;
mod families;
mod housekeeping;
mod leases;
mod pairs;
mod replays;
mod rows;
mod signing_keys;
mod tls;
mod users;
mod web_sessions;
mod webhooks;

use refreshd_store::StoreError;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_passwords.sql"),
    include_str!("migrations/0003_pages.sql"),
    include_str!("migrations/0004_sign_in_attempts.sql"),
    include_str!("migrations/0005_connections.sql"),
    include_str!("migrations/0006_webhooks.sql"),
    include_str!("migrations/0007_device_codes.sql"),
    include_str!("migrations/0008_signing_keys.sql"),
];

/// How long a request waits for a connection (or to open one) before it fails with 503.
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// Serializes migrations of concurrent starts; an arbitrary constant of refreshd's.
const MIGRATION_LOCK: i64 = 0x7265_6672_6573_6801;

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The pool's use, read at each scrape.
impl refreshd_store::Gauges for PostgresStore {
    fn record_gauges(&self) {
        let status = self.pool.status();
        metrics::gauge!("refreshd_postgres_pool_connections", "state" => "open")
            .set(status.size as f64);
        metrics::gauge!("refreshd_postgres_pool_connections", "state" => "idle")
            .set(status.available as f64);
        metrics::gauge!("refreshd_postgres_pool_max_connections").set(status.max_size as f64);
    }
}

pub struct PostgresStore {
    pool: Pool,
    /// How far the sweep's walk over sealed answers has come.
    swept_up_to: refreshd_store::rules::SweepCursor,
}

impl PostgresStore {
    /// Connects (at most `pool_size` connections) and applies pending migrations.
    pub async fn open(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let (url, tls) = tls::of_url(url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Unavailable(format!("bad PostgreSQL URL: {}", described(&e)))
        })?;
        // A database that vanishes without closing its connections (a network partition, a
        // host gone) is noticed within about half a minute, not the kernel's two hours: its
        // requests fail with 503 and the pool reconnects. Values in the URL are kept.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        if config.get_keepalives_interval().is_none() {
            config
                .keepalives_idle(Duration::from_secs(15))
                .keepalives_interval(Duration::from_secs(5))
                .keepalives_retries(3);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            Some(tls) => Manager::from_config(config, tls, manager_config),
            None => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .recycle_timeout(Some(CONNECTION_WAIT))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let store = Self {
            pool,
            swept_up_to: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let waiting = std::time::Instant::now();
        let client = self.pool.get().await.map_err(|e| unavailable(&e));
        metrics::histogram!("refreshd_postgres_pool_wait_seconds")
            .record(waiting.elapsed().as_secs_f64());
        client
    }

    /// Applies the migrations not yet applied, under a lock so concurrent starts take turns.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(Pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(Pg)?;
        // `IF NOT EXISTS` would otherwise log a notice on every start.
        tx.batch_execute("SET LOCAL client_min_messages = warning")
            .await
            .map_err(Pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS refreshd_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(Pg)?;
        let applied: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM refreshd_migrations",
                &[],
            )
            .await
            .map_err(Pg)?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            tx.batch_execute(sql).await.map_err(Pg)?;
            tx.execute(
                "INSERT INTO refreshd_migrations (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(Pg)?;
        }
        tx.commit().await.map_err(Pg)?;
        Ok(())
    }
}

/// A PostgreSQL error on its way to a `StoreError`, which `?` turns it into. (This crate may
/// not convert `tokio_postgres::Error` into `StoreError` directly: both are other crates'.)
#[derive(Debug)]
pub(crate) struct Pg(tokio_postgres::Error);

impl From<tokio_postgres::Error> for Pg {
    fn from(e: tokio_postgres::Error) -> Self {
        Pg(e)
    }
}

impl From<Pg> for StoreError {
    fn from(e: Pg) -> Self {
        unavailable(&e.0)
    }
}

/// `Row::try_get` with an error `?` turns into a `StoreError`.
pub(crate) trait Column {
    fn col<'a, I, T>(&'a self, idx: I) -> Result<T, Pg>
    where
        I: tokio_postgres::row::RowIndex + std::fmt::Display,
        T: tokio_postgres::types::FromSql<'a>;
}

impl Column for Row {
    fn col<'a, I, T>(&'a self, idx: I) -> Result<T, Pg>
    where
        I: tokio_postgres::row::RowIndex + std::fmt::Display,
        T: tokio_postgres::types::FromSql<'a>,
    {
        self.try_get(idx).map_err(Pg)
    }
}

fn unavailable(e: &(dyn std::error::Error + 'static)) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {}", described(e)))
}

/// An error and its causes on one line ("error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer"). A database error is given by its code and message only: its
/// DETAIL can quote row values, which have no place in logs.
fn described(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let database = e
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
            .or_else(|| e.downcast_ref::<tokio_postgres::error::DbError>());
        if let Some(db) = database {
            parts.push(format!("{} ({})", db.message(), db.code().code()));
            break;
        }
        // tokio-postgres repeats its cause in its own text; keep only what is new.
        let text = e.to_string();
        let own = match e.source().map(|c| c.to_string()) {
            Some(cause) => text
                .strip_suffix(&cause)
                .map(|t| t.trim_end_matches([':', ' ']).to_owned())
                .unwrap_or(text),
            None => text,
        };
        if !own.is_empty() {
            parts.push(own);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A unique violation as `Conflict(what)`, anything else as unavailable.
fn conflict_or_unavailable(e: Pg, what: &'static str) -> StoreError {
    match e.0.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(what),
        _ => e.into(),
    }
}

pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Runs a statement (prepared once per connection) and returns its rows.
async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, Pg> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// Runs a statement that returns at most one row.
async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, Pg> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

/// Runs a statement and returns how many rows it changed.
async fn execute(client: &impl GenericClient, sql: &str, params: &Params<'_>) -> Result<u64, Pg> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}
