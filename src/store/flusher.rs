//! Group commit: writers apply their change, then wait here until a flush
//! that started after their change has finished.
//!
//! sled 0.34's `flush_async` hangs when many tasks await it at once (sled
//! issue #1308), so exactly one thread ever flushes: it takes every waiter
//! that queued up, runs the blocking `flush()`, and wakes them all.
//! Concurrent writers therefore share one disk sync. The thread is its own,
//! not one of tokio's blocking pool, so that durable writes never queue
//! behind other blocking work.

use tokio::sync::{mpsc, oneshot};

/// Handle used by writers to wait for durability.
#[derive(Clone)]
pub struct Flusher {
    queue: mpsc::UnboundedSender<oneshot::Sender<Result<(), String>>>,
}

impl Flusher {
    /// Starts the flusher thread for `db`. It ends when every handle is
    /// dropped.
    pub fn start(db: sled::Db) -> Flusher {
        Self::spawn(db).0
    }

    /// Like [`Flusher::start`], with the thread's handle to join.
    pub(crate) fn spawn(db: sled::Db) -> (Flusher, std::thread::JoinHandle<()>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("keystrate-flush".into())
            .spawn(move || run(db, rx))
            .expect("spawn the flusher thread");
        (Flusher { queue }, thread)
    }

    /// Waits until everything written before this call is on disk.
    pub async fn wait(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(tx)
            .map_err(|_| "storage is shutting down".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("storage is shutting down".to_string()))
    }
}

fn run(db: sled::Db, mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), String>>>) {
    let mut waiters = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        waiters.push(first);
        // Everyone already queued had applied their change before queueing,
        // so this one flush covers them all.
        while let Ok(more) = rx.try_recv() {
            waiters.push(more);
        }
        let timer = crate::observe::Timer::start();
        let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
        metrics::histogram!(crate::observe::names::STORAGE_FLUSH_SECONDS).record(timer.seconds());
        if let Err(e) = &result {
            tracing::error!(error = %e, "flush failed");
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}
