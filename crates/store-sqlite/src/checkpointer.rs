//! WAL checkpoints on a thread of their own, so the writer's commits never wait for one.
//!
//! These passive checkpoints copy committed pages into the database file while the writer
//! goes on committing. Under steady load they never catch up with the writer, so on their own
//! the WAL would never restart and would grow without end; the writer restarts it (see
//! `writer`), which is cheap because by then almost every page has been copied here.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often an idle or small WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(1000);
/// The pause between checkpoints while the WAL is past a quarter of its bound.
const PRESSED: Duration = Duration::from_millis(20);

/// Runs passive checkpoints until dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub(super) fn start(conn: Connection, wal_max_bytes: u64) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("refreshd-sqlite-checkpoint".into())
            .spawn(move || {
                let page_size = super::writer::page_size(&conn);
                let mut pause = EVERY;
                // Wakes until the store (holding the sender) is dropped.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                    pause = match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                    }) {
                        // The writer was checkpointing: it is under pressure.
                        Ok((1, _)) => PRESSED,
                        Ok((_, frames)) if frames.max(0) as u64 * page_size > wal_max_bytes / 4 => {
                            PRESSED
                        }
                        Ok(_) => EVERY,
                        Err(e) => {
                            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                            EVERY
                        }
                    };
                }
            })
            .expect("spawning the SQLite checkpoint thread");
        Self { _stop: stop }
    }
}
