//! The one batching writer. A thread of its own drains a queue: it takes
//! everything queued at that moment as one batch, handles the batch in one
//! go, and answers every waiter with the batch's result. The store runs two
//! of them, so that applying the next batch overlaps flushing the last:
//!
//! - **write combining**: sled 0.34 seals and writes its log buffer on
//!   every transaction, so one transaction per change caps durable writes at
//!   a few thousand a second however the flushes are shared. Changes that
//!   only write (invite creates, checked by their caller under the document
//!   lock) are applied together in one transaction.
//! - **group commit**: writers apply their change, then wait until a flush
//!   that started after it has finished. sled 0.34's `flush_async` hangs
//!   when many tasks await it at once (sled issue #1308), so exactly one
//!   thread ever flushes, and concurrent writers share one disk sync.
//!
//! The threads are their own, not tokio's blocking pool, so that writes
//! never queue behind other blocking work.

use super::StoreError;
use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// A handle on one batching thread; it ends when every handle is dropped.
pub(crate) struct Batcher<J> {
    queue: mpsc::UnboundedSender<(J, Waiter)>,
}

impl<J> Clone for Batcher<J> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<J: Send + 'static> Batcher<J> {
    /// Starts the thread `name`; `handle` gets at most `max_batch` jobs at
    /// a time, every one queued before it started.
    pub(crate) fn spawn(
        name: &str,
        max_batch: usize,
        mut handle: impl FnMut(&[J]) -> Result<(), StoreError> + Send + 'static,
    ) -> (Batcher<J>, std::thread::JoinHandle<()>) {
        let (queue, mut rx) = mpsc::unbounded_channel::<(J, Waiter)>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut jobs = Vec::new();
                let mut waiters = Vec::new();
                while let Some((job, waiter)) = rx.blocking_recv() {
                    jobs.push(job);
                    waiters.push(waiter);
                    // The writer that woke this thread is usually the first
                    // of a wave still arriving (the replies of the last
                    // batch release many writers at once). Handling a batch
                    // as soon as it was woken made batches of about 3 under
                    // 64 writers and halved durable invite creation, the
                    // thread waking again for each (docs/benchmarks.md,
                    // "Side by side after the second security round"). So
                    // linger 0.1 ms (a durable write waits for a flush of a
                    // few ms anyway), then take what came, and go on while
                    // a yield brings more.
                    std::thread::sleep(std::time::Duration::from_micros(100));
                    loop {
                        while jobs.len() < max_batch {
                            match rx.try_recv() {
                                Ok((job, waiter)) => {
                                    jobs.push(job);
                                    waiters.push(waiter);
                                }
                                Err(_) => break,
                            }
                        }
                        if jobs.len() >= max_batch {
                            break;
                        }
                        std::thread::yield_now();
                        if rx.is_empty() {
                            break;
                        }
                    }
                    let result = handle(&jobs);
                    jobs.clear();
                    for waiter in waiters.drain(..) {
                        let _ = waiter.send(result.clone());
                    }
                }
            })
            .expect("spawn a storage writer thread");
        (Batcher { queue }, thread)
    }

    /// Returns once `job` was handled in a batch.
    pub(crate) async fn submit(&self, job: J) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((job, tx))
            .map_err(|_| StoreError::ShuttingDown)?;
        rx.await.unwrap_or(Err(StoreError::ShuttingDown))
    }
}

/// Group commit on a bare sled database, for the benchmark's baseline of
/// what sled itself does with keystrate's flushing.
#[derive(Clone)]
pub struct Flusher(Batcher<()>);

impl Flusher {
    /// Starts the flushing thread for `db`.
    pub fn start(db: sled::Db) -> Flusher {
        Flusher(flusher(db).0)
    }

    /// Waits until everything written before this call is on disk.
    pub async fn wait(&self) -> Result<(), StoreError> {
        self.0.submit(()).await
    }
}

/// The group-commit thread: every queued waiter had applied its change
/// before queueing, so one flush covers them all.
pub(crate) fn flusher(db: sled::Db) -> (Batcher<()>, std::thread::JoinHandle<()>) {
    Batcher::spawn("keystrate-flush", usize::MAX, move |_| {
        let timer = crate::observe::Timer::start();
        let result = db.flush().map(drop).map_err(StoreError::from);
        metrics::histogram!(crate::observe::names::STORAGE_FLUSH_SECONDS).record(timer.seconds());
        if let Err(e) = &result {
            tracing::error!(error = %e, "flush failed");
        }
        result
    })
}
