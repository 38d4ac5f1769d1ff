//! Group commit for finished runs: callers hand a [`store::RunRecord`] to one writer task and
//! wait for it to be durable; the task writes everything that queued up meanwhile in one
//! transaction ([`store::Store::record_runs`]). At concurrency 1 a run waits for its own
//! transaction only; under load, one transaction carries many runs, so SQLite's single writer
//! stops being the limit.
//!
//! A run that starts a conversation is recorded as `running` through the same writer
//! ([`RunWriter::start`], not waited for: no extra round trip on the hot path); its final
//! record finishes that row in place. A start and its finish in one batch write the finish only.

use parking_lot::Mutex;
use store::{RunRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most runs written per transaction.
const MAX_BATCH: usize = 512;

type Job = (RunRecord, oneshot::Sender<Result<(), StoreError>>);

pub(crate) struct RunWriter {
    tx: mpsc::UnboundedSender<Job>,
    /// The receiver until the task is started (on first use, inside the runtime).
    pending: Mutex<Option<(mpsc::UnboundedReceiver<Job>, Store)>>,
}

impl RunWriter {
    pub(crate) fn new(store: Store) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, pending: Mutex::new(Some((rx, store))) }
    }

    /// Queues the record that a run started (status `running`) and returns at once: it is
    /// committed with the next batch, before the run's own final record.
    pub(crate) fn start(&self, record: RunRecord) {
        self.spawn_task();
        let (done, _) = oneshot::channel();
        let _ = self.tx.send((record, done));
    }

    fn spawn_task(&self) {
        if let Some((rx, store)) = self.pending.lock().take() {
            tokio::spawn(run(rx, store));
        }
    }

    /// Writes `record` (batched with others) and waits until it is committed.
    pub(crate) async fn write(&self, record: RunRecord) -> Result<(), StoreError> {
        self.spawn_task();
        let (done, wait) = oneshot::channel();
        self.tx
            .send((record, done))
            .map_err(|_| StoreError::Conflict("the run writer has stopped"))?;
        wait.await.map_err(|_| StoreError::Conflict("the run writer has stopped"))?
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Job>, store: Store) {
    let mut jobs: Vec<Job> = Vec::with_capacity(64);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // A run's start record is superseded by its final record in the same batch (one
        // statement cannot write a row twice on PostgreSQL).
        let mut finished = std::collections::HashSet::new();
        for (r, _) in jobs.iter().rev() {
            if r.status != store::RunStatus::Running {
                finished.insert(r.run_id);
            }
        }
        jobs.retain(|(r, _)| {
            r.status != store::RunStatus::Running || !finished.contains(&r.run_id)
        });
        let (records, waiters): (Vec<RunRecord>, Vec<_>) = jobs.drain(..).unzip();
        let results = store.record_runs(&records).await;
        for (waiter, result) in waiters.into_iter().zip(results) {
            let _ = waiter.send(result);
        }
    }
}
