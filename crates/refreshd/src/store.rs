//! Which storage adapter runs: the one the database URL names. The only place that knows
//! both adapters; everything above storage holds an `Arc<dyn Store>`.

use std::sync::Arc;

use refreshd_store::{Store, StoreError};
use refreshd_store_postgres::PostgresStore;
use refreshd_store_sqlite::SqliteStore;

pub use refreshd_store_postgres::is_postgres;
pub use refreshd_store_sqlite::{DEFAULT_WAL_MAX_BYTES, path_of as sqlite_path_of};

/// Opens the adapter a database URL names (`sqlite://PATH` or `postgres://…`), creating and
/// migrating the database if needed. `pool_size` caps PostgreSQL connections.
pub async fn open(url: &str, pool_size: usize) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, pool_size, DEFAULT_WAL_MAX_BYTES).await
}

/// `open`, with the size past which a SQLite WAL is restarted.
pub async fn open_with(
    url: &str,
    pool_size: usize,
    sqlite_wal_max_bytes: u64,
) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = sqlite_path_of(url) {
        return Ok(Arc::new(
            SqliteStore::open(path, sqlite_wal_max_bytes).await?,
        ));
    }
    if is_postgres(url) {
        return Ok(Arc::new(PostgresStore::open(url, pool_size).await?));
    }
    Err(StoreError::UnsupportedUrl(
        url.split(':').next().unwrap_or_default().to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn unsupported_urls_are_refused_clearly() {
        let err = super::open("mysql://x", 4).await.err().unwrap();
        assert!(err.to_string().contains("mysql"), "{err}");
    }
}
