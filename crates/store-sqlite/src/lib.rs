//! The embedded default: one SQLite file in WAL mode, a single group-committing writer and a
//! pool of readers.

mod access_tokens;
mod apps;
mod attempts;
mod callers;
mod checkpointer;
mod codes;
mod connections;
mod consents;
mod device_codes;
mod families;
mod housekeeping;
mod leases;
mod pairs;
mod readers;
mod replays;
mod rows;
mod signing_keys;
mod users;
mod web_sessions;
mod webhooks;
mod writer;

use refreshd_store::StoreError;
use rusqlite::Connection;

use checkpointer::Checkpointer;
use readers::Readers;
use writer::Writer;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_broker.sql"),
    include_str!("migrations/0003_leases_and_expiry.sql"),
    include_str!("migrations/0004_passwords.sql"),
    include_str!("migrations/0005_pages.sql"),
    include_str!("migrations/0006_sign_in_attempts.sql"),
    include_str!("migrations/0007_connections.sql"),
    include_str!("migrations/0008_webhooks.sql"),
    include_str!("migrations/0009_device_codes.sql"),
    include_str!("migrations/0010_signing_keys.sql"),
];

/// The file path in a `sqlite://PATH` or `sqlite:PATH` URL.
pub fn path_of(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
}

/// The WAL's bound unless configured (`sqlite_wal_max_bytes`): large enough that restarting
/// it does not show in refresh latency at full load (see BENCHMARKS.md).
pub const DEFAULT_WAL_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The WAL's size is reported by the writer after each commit (see `writer`).
impl refreshd_store::Gauges for SqliteStore {}

pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
    _checkpointer: Checkpointer,
    /// How far the sweep's walk over sealed answers has come.
    swept_up_to: refreshd_store::rules::SweepCursor,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`, keeping its WAL near
    /// `wal_max_bytes` (see `writer`).
    pub async fn open(path: &str, wal_max_bytes: u64) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<Connection, StoreError> {
                let conn = connect(&path)?;
                migrate(&conn)?;
                // Checkpoints run on their own thread so commits never wait for one.
                // Commits do not sync; the writer's syncer does, before any answer.
                conn.execute_batch(&format!(
                    "PRAGMA wal_autocheckpoint = 0; PRAGMA synchronous = NORMAL;
                     PRAGMA journal_size_limit = {wal_max_bytes};"
                ))
                .map_err(unavailable)?;
                Ok(conn)
            }
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        Ok(Self {
            writer: Writer::start(
                conn,
                std::path::PathBuf::from(format!("{path}-wal")),
                wal_max_bytes,
            ),
            _checkpointer: Checkpointer::start(connect(&path)?, wal_max_bytes),
            readers: Readers::new(path),
            swept_up_to: Default::default(),
        })
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn conflict_or_unavailable(e: rusqlite::Error, what: &'static str) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(what),
        _ => unavailable(e),
    }
}

fn connect(path: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    // synchronous=FULL: in WAL mode NORMAL may lose the last commits on power loss, and every
    // acknowledged rotation must survive one.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    Ok(conn)
}

/// How long a connection waits for another's lock (another process's, such as the CLI's).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // The version is read inside the write lock so concurrent starts cannot both migrate.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
    let applied = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, usize>(0))
        .and_then(|applied| {
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
                conn.execute_batch(sql)?;
                conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            }
            conn.execute_batch("COMMIT")
        });
    applied.map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        unavailable(e)
    })
}
