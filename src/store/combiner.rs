//! Write combining. sled 0.34 seals and writes its log buffer on every
//! transaction, so one transaction per change caps durable writes at a few
//! thousand a second however the flushes are shared. Changes that only
//! write (their checks were made by the caller, under its document lock)
//! are queued here; one thread applies everything queued at that moment in
//! a single transaction and wakes each caller. The thread is its own, not
//! one of tokio's blocking pool, so that writes never queue behind other
//! blocking work.

use super::{AllTrees, StoreError, Tx};
use sled::transaction::UnabortableTransactionError;
use tokio::sync::{mpsc, oneshot};

/// A change that only writes. It may run more than once (transaction
/// retries) and must not have side effects.
pub type Change = Box<dyn Fn(&Tx) -> Result<(), UnabortableTransactionError> + Send>;

type Job = (Change, oneshot::Sender<Result<(), StoreError>>);

/// Most changes in one transaction, to bound its size.
const MAX_BATCH: usize = 1024;

#[derive(Clone)]
pub(crate) struct Combiner {
    queue: mpsc::UnboundedSender<Job>,
}

impl Combiner {
    /// Starts the combiner thread; it ends when every handle is dropped.
    pub(crate) fn spawn(trees: AllTrees) -> (Combiner, std::thread::JoinHandle<()>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("keystrate-write".into())
            .spawn(move || run(trees, rx))
            .expect("spawn the write combiner thread");
        (Combiner { queue }, thread)
    }

    /// Returns once `change` is applied (not yet flushed).
    pub(crate) async fn apply(&self, change: Change) -> Result<(), StoreError> {
        let shutting_down = || StoreError("storage is shutting down".into());
        let (tx, rx) = oneshot::channel();
        self.queue.send((change, tx)).map_err(|_| shutting_down())?;
        rx.await.unwrap_or_else(|_| Err(shutting_down()))
    }
}

fn run(trees: AllTrees, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (changes, waiters): (Vec<Change>, Vec<_>) = batch.into_iter().unzip();
        let result = trees.write::<(), StoreError>(|tx| {
            for change in &changes {
                change(tx)?;
            }
            Ok(())
        });
        if let Err(e) = &result {
            tracing::error!(error = %e, "combined write failed");
        }
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}
