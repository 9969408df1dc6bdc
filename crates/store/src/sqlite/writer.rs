//! The single writer: one connection, one thread, and group commit with a pipelined sync.
//!
//! Every write runs in a savepoint inside a transaction shared with whatever other writes
//! arrived meanwhile. The transaction commits into the WAL without syncing (the writer
//! connection runs `synchronous = NORMAL`), and the batch passes to the syncer thread, which
//! fsyncs the WAL file and only then answers each caller. So every acknowledged write is on
//! disk, one sync covers every batch committed since the last one, and the writer executes
//! the next batch while the disk syncs the previous.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

/// Upper bound on writes per transaction, so one batch cannot hold the lock for long.
const MAX_BATCH: usize = 512;

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Work = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Finish + Send>;

pub(super) struct Writer {
    jobs: mpsc::Sender<Work>,
}

/// A committed (or failed) batch waiting for its sync.
struct Committed {
    outcome: Result<(), StoreError>,
    finishes: Vec<Finish>,
}

impl Writer {
    /// `conn` must run `synchronous = NORMAL`; `wal` is the path of its WAL file.
    pub(super) fn start(conn: Connection, wal: PathBuf) -> Self {
        let (jobs, queue) = mpsc::channel::<Work>();
        let (committed, to_sync) = mpsc::channel::<Committed>();
        std::thread::Builder::new()
            .name("refreshd-sqlite-writer".into())
            .spawn(move || run(conn, queue, committed))
            .expect("spawning the SQLite writer thread");
        std::thread::Builder::new()
            .name("refreshd-sqlite-sync".into())
            .spawn(move || sync(wal, to_sync))
            .expect("spawning the SQLite sync thread");
        Self { jobs }
    }

    /// Runs `f` in the next batch and answers once that batch is durable.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
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

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(super::unavailable)
    };
    run("SAVEPOINT job")?;
    let outcome = f(conn);
    if outcome.is_err() {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    outcome
}

fn run(conn: Connection, queue: mpsc::Receiver<Work>, synced: mpsc::Sender<Committed>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        let begun = conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(super::unavailable);
        let finishes: Vec<Finish> = batch
            .into_iter()
            .map(|work| work(begun.as_ref().map(|()| &conn).map_err(Clone::clone)))
            .collect();
        let committed = begun.and_then(|()| {
            conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                super::unavailable(e)
            })
        });
        if synced
            .send(Committed {
                outcome: committed,
                finishes,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Answers committed batches once the WAL holding them is synced to disk.
fn sync(wal: PathBuf, committed: mpsc::Receiver<Committed>) {
    let mut file: Option<File> = None;
    while let Ok(first) = committed.recv() {
        let mut batches = vec![first];
        batches.extend(committed.try_iter());
        // The WAL file exists once the first batch has committed; open it then, once.
        if file.is_none() {
            file = File::open(&wal).ok();
        }
        let synced = match &file {
            Some(f) => f
                .sync_data()
                .map_err(|e| StoreError::Unavailable(format!("syncing the WAL: {e}"))),
            None => Err(StoreError::Unavailable(format!(
                "cannot open {} to sync it",
                wal.display()
            ))),
        };
        for batch in batches {
            let outcome = batch.outcome.and(synced.clone());
            for finish in batch.finishes {
                finish(outcome.clone());
            }
        }
    }
}
