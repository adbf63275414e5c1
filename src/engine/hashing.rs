//! Password hashing on its own small pool of threads. Argon2id takes 19 MiB
//! and tens of milliseconds per hash, so running every login on tokio's
//! blocking pool (up to 512 threads) let a login flood take gigabytes and
//! starve the storage threads. Here at most one hash per core runs, a short
//! queue waits, and anything past that is refused at once with
//! [`Error::Busy`] (503 with `Retry-After`).

use super::{Error, Result};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes waiting for a worker, per worker: short, so that a caller either
/// starts within a few hash times or is told to come back.
const QUEUE_PER_WORKER: usize = 2;

pub struct HashPool {
    jobs: SyncSender<Job>,
}

impl HashPool {
    /// One worker per core. The workers end when the pool is dropped.
    pub fn new() -> HashPool {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashPool::with_workers(workers)
    }

    fn with_workers(workers: usize) -> HashPool {
        let (jobs, queue) = sync_channel::<Job>(workers * QUEUE_PER_WORKER);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("keystrate-hash-{i}"))
                .spawn(move || work(&queue))
                .expect("spawn a password hashing thread");
        }
        HashPool { jobs }
    }

    /// Runs `f` on a hashing thread; [`Error::Busy`] when every worker is
    /// busy and the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let queue = metrics::gauge!(crate::observe::names::HASHING_QUEUE);
        let job: Job = Box::new({
            let queue = queue.clone();
            move || {
                let value = f();
                // Counted before the caller hears back, so a reply already
                // implies the count.
                metrics::counter!(crate::observe::names::PASSWORD_HASHES).increment(1);
                let _ = done.send(value);
                queue.decrement(1);
            }
        });
        queue.increment(1);
        self.jobs.try_send(job).map_err(|e| {
            queue.decrement(1);
            match e {
                TrySendError::Full(_) => {
                    crate::observe::refused("password_hashing");
                    Error::Busy
                }
                TrySendError::Disconnected(_) => Error::Internal("hashing pool stopped".into()),
            }
        })?;
        result
            .await
            .map_err(|_| Error::Internal("password hashing failed".into()))
    }
}

impl Default for HashPool {
    fn default() -> Self {
        HashPool::new()
    }
}

/// Niceness of the hashing threads: under a flood of logins the CPU goes
/// first to answering requests and committing writes, hashing takes what is
/// left.
const NICENESS: libc::c_int = 10;

fn work(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, not while
        // running it.
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // the pool was dropped
        }
    }
}

/// Lowers this thread's priority; on Linux the nice value is per thread.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread's own id.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICENESS)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "hashing thread keeps its priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test]
    async fn past_the_workers_and_the_queue_callers_are_refused_at_once() {
        let pool = HashPool::with_workers(1);
        let (started, on_start) = mpsc::channel::<()>();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let gated = |started: Option<mpsc::Sender<()>>| {
            let gate = gate.clone();
            move || {
                if let Some(s) = started {
                    s.send(()).unwrap();
                }
                gate.lock().unwrap().recv().unwrap();
            }
        };
        // A first poll hands the job over; the caller may stop waiting.
        assert!(pool.run(gated(Some(started))).now_or_never().is_none());
        on_start.recv_timeout(Duration::from_secs(30)).unwrap();
        for _ in 0..QUEUE_PER_WORKER {
            assert!(pool.run(gated(None)).now_or_never().is_none());
        }
        assert!(matches!(
            pool.run(|| ()).now_or_never(),
            Some(Err(Error::Busy))
        ));
        for _ in 0..=QUEUE_PER_WORKER {
            release.send(()).unwrap();
        }
        // The worker drains the queue; then the pool takes work again.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match pool.run(|| 7).await {
                Err(Error::Busy) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                other => break assert_eq!(other.unwrap(), 7),
            }
        }
    }
}
