//! The single writer: one connection, one thread, and group commit.
//!
//! Every write runs in a savepoint inside a transaction shared with whatever other writes
//! arrived meanwhile; the transaction commits (one fsync) and only then does each caller get
//! its answer. Durable acknowledgements at the cost of one sync per batch, not per request.

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

impl Writer {
    pub(super) fn start(conn: Connection) -> Self {
        let (jobs, queue) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("refreshd-sqlite-writer".into())
            .spawn(move || run(conn, queue))
            .expect("spawning the SQLite writer thread");
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

fn run(conn: Connection, queue: mpsc::Receiver<Work>) {
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
        for finish in finishes {
            finish(committed.clone());
        }
    }
}
