//! WAL checkpoints on a thread of their own, so the writer's commits never wait for one.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

const EVERY: Duration = Duration::from_millis(1000);

/// Runs passive checkpoints until dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub(super) fn start(conn: Connection) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("refreshd-sqlite-checkpoint".into())
            .spawn(move || {
                // Wakes every EVERY until the store (holding the sender) is dropped.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                    }
                }
            })
            .expect("spawning the SQLite checkpoint thread");
        Self { _stop: stop }
    }
}
