//! Databases for tests (feature `testing`): a fresh one per test, on the backend that
//! `REFRESHD_TEST_DATABASE` names (`sqlite`, the default, or `postgres`). `scripts/test` runs
//! the suite once on each, against a throwaway PostgreSQL cluster it starts itself.

use std::path::Path;

/// The URL of a fresh, empty database for one test: a SQLite file in `dir`, or a new schema
/// in the test cluster.
pub async fn scratch_database(dir: &Path) -> String {
    match std::env::var("REFRESHD_TEST_DATABASE").as_deref() {
        Ok("postgres") => scratch_postgres().await,
        Ok("sqlite") | Err(_) => format!("sqlite://{}", dir.join("refreshd.db").display()),
        Ok(other) => panic!("REFRESHD_TEST_DATABASE={other:?}: expected sqlite or postgres"),
    }
}

/// `scratch_database` for code that cannot await it; it runs on a thread of its own, so it
/// may be called inside a runtime or outside one.
pub fn scratch_database_blocking(dir: &Path) -> String {
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for setting up the test database")
            .block_on(scratch_database(&dir))
    })
    .join()
    .expect("setting up the test database")
}

/// A fresh schema in the test cluster at `REFRESHD_TEST_POSTGRES_URL`, and a URL whose
/// connections use only it: tests share the cluster, never each other's tables.
pub async fn scratch_postgres() -> String {
    let base = std::env::var("REFRESHD_TEST_POSTGRES_URL").expect(
        "REFRESHD_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts \
         a throwaway PostgreSQL cluster",
    );
    in_fresh_schema(&base).await
}

/// A new schema in the cluster at `base`, and a URL whose connections use only it.
pub async fn in_fresh_schema(base: &str) -> String {
    let schema = format!(
        "t_{:016x}",
        u64::from_le_bytes(refreshd_core::random::bytes::<8>())
    );
    let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test cluster: {e}"));
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap_or_else(|e| panic!("creating a test schema: {e}"));
    drop(client);
    let _ = connection.await;
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}
