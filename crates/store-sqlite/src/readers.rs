//! A small pool of read connections; WAL lets them read while the writer commits.

use refreshd_store::StoreError;
use std::sync::Mutex;

use rusqlite::Connection;

pub(super) struct Readers {
    path: String,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: String) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` with a pooled connection, on the calling thread.
    ///
    /// Reads are point lookups by primary or unique key whose pages sit in the page cache: a
    /// few microseconds, less than a hop to a blocking thread costs (see BENCHMARKS.md).
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let outcome = f(&conn);
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        outcome
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        super::connect(&self.path)
    }
}
