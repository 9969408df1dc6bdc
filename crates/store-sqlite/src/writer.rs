//! The single writer: one connection, one thread, and group commit with a pipelined sync.
//!
//! Every write runs in a savepoint inside a transaction shared with whatever other writes
//! arrived meanwhile. The transaction commits into the WAL without syncing (the writer
//! connection runs `synchronous = NORMAL`), and the batch passes to the syncer thread, which
//! fsyncs the WAL file and only then answers each caller. So every acknowledged write is on
//! disk, one sync covers every batch committed since the last one, and the writer executes
//! the next batch while the disk syncs the previous.
//!
//! The writer also keeps the WAL bounded. Under steady load the checkpointer's passive
//! checkpoints never catch up, and a WAL restarts (writes from its start again) only when a
//! write begins with every frame copied into the database. So once a commit leaves the WAL
//! past half its bound, the writer runs a passive checkpoint itself between two batches: with
//! no write under way it copies the frames the checkpointer has not yet copied and syncs the
//! database file, and the next batch restarts the WAL (`journal_size_limit` then truncates
//! the file to the bound). At first it never waits: if the checkpointer holds the checkpoint
//! lock, or a reader still reads an older snapshot, it tries again after the next batch. Past
//! three quarters of the bound it stops trying its luck and waits (up to the busy timeout) for
//! the checkpointer and for readers of older snapshots, so the WAL cannot outgrow its bound
//! under any load. The writes queued meanwhile wait for that one checkpoint (BENCHMARKS.md has
//! its cost by bound).

use refreshd_store::StoreError;
use std::cell::Cell;
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

/// Upper bound on writes per transaction, so one batch cannot hold the lock for long.
const MAX_BATCH: usize = 512;

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Work = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Finish + Send>;

/// Set once, when a WAL sync fails. After that nothing can be promised durable (a failed
/// fsync may have dropped pages the kernel now calls clean), so every write fails until
/// refreshd is restarted and SQLite recovers from what is really on disk.
type Halt = Arc<OnceLock<StoreError>>;

pub(super) struct Writer {
    jobs: mpsc::Sender<Work>,
    halted: Halt,
}

/// A committed (or failed) batch waiting for its sync.
struct Committed {
    outcome: Result<(), StoreError>,
    finishes: Vec<Finish>,
}

impl Writer {
    /// `conn` must run `synchronous = NORMAL`; `wal` is the path of its WAL file, kept near
    /// `wal_max_bytes`.
    pub(super) fn start(conn: Connection, wal: PathBuf, wal_max_bytes: u64) -> Self {
        let (jobs, queue) = mpsc::channel::<Work>();
        let (committed, to_sync) = mpsc::channel::<Committed>();
        let halted = Halt::default();
        let writer_halted = halted.clone();
        std::thread::Builder::new()
            .name("refreshd-sqlite-writer".into())
            .spawn(move || {
                let bound = WalBound::new(&conn, wal_max_bytes);
                run(conn, queue, committed, writer_halted, bound)
            })
            .expect("spawning the SQLite writer thread");
        let sync_halted = halted.clone();
        std::thread::Builder::new()
            .name("refreshd-sqlite-sync".into())
            .spawn(move || sync(wal, to_sync, sync_halted))
            .expect("spawning the SQLite sync thread");
        Self { jobs, halted }
    }

    /// Runs `f` in the next batch and answers once that batch is durable.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(e) = self.halted.get() {
            return Err(e.clone());
        }
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let outcome = conn.and_then(|conn| in_savepoint(conn, f));
            Box::new(move |commit: Result<(), StoreError>| {
                let _ = reply.send(commit.and(outcome));
            })
        });
        self.jobs
            .send(work)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer dropped a write".into()))?
    }
}

/// Runs one job in a savepoint. A job that fails or panics leaves nothing behind; if even the
/// savepoint cannot be undone, the whole transaction is rolled back, which the writer sees.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(super::unavailable)
    };
    run("SAVEPOINT job")?;
    let outcome = catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::Corrupt("a storage write panicked".into())));
    let undone = if outcome.is_err() {
        run("ROLLBACK TO job")
    } else {
        Ok(())
    };
    if undone.and_then(|()| run("RELEASE job")).is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

thread_local! {
    /// Frames in the WAL after the last commit on this thread (the writer's), from SQLite's
    /// WAL hook.
    static WAL_FRAMES: Cell<i64> = const { Cell::new(0) };
}

fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(i64::from(frames));
    Ok(())
}

/// The database's page size, which is also a WAL frame's payload.
pub(super) fn page_size(conn: &Connection) -> u64 {
    conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .map_or(4096, |size| size.max(512) as u64)
}

/// Restarts the WAL from the writer once it passes half of `wal_max_bytes`, and insists
/// past three quarters.
struct WalBound {
    restart_at_frames: i64,
    insist_at_frames: i64,
    page_size: u64,
}

impl WalBound {
    fn new(conn: &Connection, wal_max_bytes: u64) -> Self {
        conn.wal_hook(Some(note_wal_frames));
        let page_size = page_size(conn);
        let frames = |bytes: u64| (bytes / page_size).max(1) as i64;
        Self {
            restart_at_frames: frames(wal_max_bytes / 2),
            insist_at_frames: frames(wal_max_bytes / 4 * 3),
            page_size,
        }
    }

    /// Called between batches, outside any transaction.
    fn keep(&self, conn: &Connection) {
        let frames = WAL_FRAMES.get();
        metrics::gauge!("refreshd_sqlite_wal_bytes")
            .set((frames.max(0) as u64 * self.page_size) as f64);
        if frames < self.restart_at_frames {
            return;
        }
        let started = std::time::Instant::now();
        // Passive: it never waits for a reader. With no write under way it copies every frame
        // (readers started since the last commit see all of them), and the next write then
        // restarts the WAL unless a reader from before the checkpoint is still reading.
        // Restart: the same, but first waiting for the checkpointer's lock, and then for the
        // readers of older snapshots to finish (new ones read the database file), so the next
        // write restarts the WAL.
        // The row is (busy, frames, checkpointed); (1, -1, -1) when the checkpointer held it.
        let mode = if frames < self.insist_at_frames {
            "PRAGMA wal_checkpoint(PASSIVE)"
        } else {
            "PRAGMA wal_checkpoint(RESTART)"
        };
        let copied = conn.query_row(mode, [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match copied {
            Ok((0, frames, checkpointed)) if frames == checkpointed => {
                WAL_FRAMES.set(0);
                metrics::histogram!("refreshd_sqlite_wal_restart_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            // The checkpointer held the lock, or a reader an old snapshot: after the next batch.
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "restarting the WAL failed; will retry"),
        }
    }
}

fn run(
    conn: Connection,
    queue: mpsc::Receiver<Work>,
    synced: mpsc::Sender<Committed>,
    halted: Halt,
    bound: WalBound,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        let begun = match halted.get() {
            Some(e) => Err(e.clone()),
            None => conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(super::unavailable),
        };
        let broken = || StoreError::Unavailable("the batch's transaction was rolled back".into());
        let mut finishes = Vec::with_capacity(batch.len());
        for work in batch {
            // Once the transaction is gone (an error rolled it back), no job may run in
            // autocommit mode: the rest fail, and so does the batch.
            let conn = match &begun {
                Ok(()) if conn.is_autocommit() => Err(broken()),
                Ok(()) => Ok(&conn),
                Err(e) => Err(e.clone()),
            };
            finishes.push(work(conn));
        }
        metrics::histogram!("refreshd_sqlite_batch_writes").record(finishes.len() as f64);
        let committing = std::time::Instant::now();
        let committed = begun.and_then(|()| {
            if conn.is_autocommit() {
                return Err(broken());
            }
            conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                super::unavailable(e)
            })
        });
        metrics::histogram!("refreshd_sqlite_commit_seconds")
            .record(committing.elapsed().as_secs_f64());
        let restart_due = committed.is_ok();
        if synced
            .send(Committed {
                outcome: committed,
                finishes,
            })
            .is_err()
        {
            return;
        }
        // After handing the batch to the syncer, so its callers do not wait for this.
        if restart_due {
            bound.keep(&conn);
        }
    }
}

/// Opens the WAL for syncing, and makes its directory entry durable once.
fn open_wal(wal: &Path) -> Result<File, StoreError> {
    let file = File::open(wal)
        .map_err(|e| StoreError::Unavailable(format!("opening {}: {e}", wal.display())))?;
    if let Some(dir) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Unavailable(format!("syncing {}: {e}", dir.display())))?;
    }
    Ok(file)
}

/// Answers committed batches once the WAL holding them is synced to disk.
fn sync(wal: PathBuf, committed: mpsc::Receiver<Committed>, halted: Halt) {
    let mut file: Option<File> = None;
    while let Ok(first) = committed.recv() {
        let mut batches = vec![first];
        batches.extend(committed.try_iter());
        let synced = match halted.get() {
            Some(e) => Err(e.clone()),
            None => {
                // The WAL exists once the first batch has committed; open it then, once.
                let opened = match file.take() {
                    Some(f) => Ok(f),
                    None => open_wal(&wal),
                };
                let synced = opened.and_then(|f| {
                    let syncing = std::time::Instant::now();
                    let outcome = f
                        .sync_data()
                        .map_err(|e| StoreError::Unavailable(format!("syncing the WAL: {e}")));
                    metrics::histogram!("refreshd_sqlite_sync_seconds")
                        .record(syncing.elapsed().as_secs_f64());
                    file = Some(f);
                    outcome
                });
                if let Err(e) = &synced {
                    tracing::error!(error = %e, "the SQLite WAL could not be synced; refusing all writes until restart");
                    let _ = halted.set(e.clone());
                }
                synced
            }
        };
        for batch in batches {
            let outcome = batch.outcome.and(synced.clone());
            for finish in batch.finishes {
                finish(outcome.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (v INTEGER);",
        )
        .unwrap();
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        (
            Writer::start(conn, wal, super::super::DEFAULT_WAL_MAX_BYTES),
            dir,
        )
    }

    fn count(conn: &Connection) -> Result<i64, StoreError> {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .map_err(super::super::unavailable)
    }

    #[tokio::test]
    async fn a_failed_or_panicking_job_leaves_nothing_and_the_writer_goes_on() {
        let (w, _dir) = writer();
        let failed = w
            .write(|conn| {
                conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
                Err::<(), _>(StoreError::Conflict("test"))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict("test"))));
        let panicked = w
            .write(|conn| {
                conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
                panic!("a bug in a write");
            })
            .await;
        assert!(matches!(panicked, Err::<(), _>(StoreError::Corrupt(_))));
        w.write(|conn| {
            conn.execute("INSERT INTO t VALUES (3)", [])
                .map_err(super::super::unavailable)
        })
        .await
        .unwrap();
        assert_eq!(
            w.write(count).await.unwrap(),
            1,
            "only the good write is stored"
        );
    }

    #[tokio::test]
    async fn concurrent_writes_are_all_answered_after_their_commit() {
        let (w, _dir) = writer();
        let w = Arc::new(w);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    w.write(move |conn| {
                        conn.execute("INSERT INTO t VALUES (?1)", [i])
                            .map_err(super::super::unavailable)
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1);
        }
        assert_eq!(w.write(count).await.unwrap(), 200);
    }

    #[tokio::test]
    async fn after_a_failed_sync_every_write_is_refused() {
        let (w, _dir) = writer();
        let _ = w.halted.set(StoreError::Unavailable("disk said no".into()));
        let refused = w.write(count).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(m)) if m == "disk said no"));
    }
}
