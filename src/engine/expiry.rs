//! The background task that deletes invites at their expiry instant. Like
//! mini-redis's purge task it sleeps until the next deadline (read from the
//! ordered `expiry` index, so nothing is held in memory) and is woken early
//! when an invite is created.

use super::{now_ms, Engine};
use crate::store::last_part;
use std::time::Duration;
use tokio::sync::watch;

impl Engine {
    /// Wakes the expiry task to recompute its next deadline.
    pub(crate) fn expiry_changed(&self) {
        self.inner.expiry_changed.notify_one();
    }

    /// The earliest `(deadline ms, index key)`, if any invite is stored.
    fn next_expiry(&self) -> Option<(i64, Vec<u8>)> {
        let (k, _) = self.store().expiry.first().ok()??;
        let deadline = i64::from_be_bytes(k.get(..8)?.try_into().ok()?);
        Some((deadline, k.to_vec()))
    }

    /// Deletes every invite due now; returns the next deadline.
    pub async fn purge_expired(&self) -> Option<i64> {
        loop {
            let (deadline, index_key) = self.next_expiry()?;
            if deadline > now_ms() {
                return Some(deadline);
            }
            if let Err(e) = self.expire_invite(last_part(&index_key), &index_key).await {
                tracing::error!(error = %e, "expiring an invite failed");
                return Some(now_ms() + 1000);
            }
        }
    }
}

/// Runs until `shutdown` turns true.
pub async fn run(engine: Engine, mut shutdown: watch::Receiver<bool>) {
    loop {
        let next = engine.purge_expired().await;
        let until_next = async {
            match next {
                Some(deadline) => {
                    let wait = Duration::from_millis((deadline - now_ms()).max(0) as u64);
                    tokio::time::sleep(wait).await
                }
                // Nothing stored: sleep until an invite is created.
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = until_next => {}
            _ = engine.inner.expiry_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
