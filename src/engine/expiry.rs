//! The background task that deletes invites and sessions at their expiry
//! instant. Like mini-redis's purge task it sleeps until the next deadline
//! (read from the store's ordered expiry index of invites and sessions, so
//! nothing is held in memory) and is woken early when an invite or a session is
//! created.

use super::{now_ms, Engine};
use crate::store::InviteRef;
use std::time::Duration;
use tokio::sync::watch;

/// Most invites deleted in one transaction: a burst of expiries costs one
/// transaction per batch and document, not one per invite.
const BATCH: usize = 256;

impl Engine {
    /// Wakes the expiry task to recompute its next deadline.
    pub(crate) fn expiry_changed(&self) {
        self.inner.expiry_changed.notify_one();
    }

    /// Deletes every invite due now; returns the next deadline.
    pub async fn purge_expired(&self) -> Option<i64> {
        loop {
            let crate::store::Due { due, next } = match self.store().due_invites(now_ms(), BATCH) {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %e, "reading the expiry index failed");
                    return Some(now_ms() + 1000);
                }
            };
            let mut by_doc: Vec<(String, Vec<InviteRef>)> = Vec::new();
            for entry in due {
                match by_doc.iter_mut().find(|(doc, _)| *doc == entry.doc) {
                    Some((_, items)) => items.push(entry),
                    None => by_doc.push((entry.doc.clone(), vec![entry])),
                }
            }
            for (doc, keys) in &by_doc {
                if let Err(e) = self.expire_invites(doc, keys).await {
                    tracing::error!(error = %e, "expiring invites failed");
                    return Some(now_ms() + 1000);
                }
            }
            match next {
                Some(deadline) if deadline <= now_ms() => continue,
                other => return other,
            }
        }
    }
}

/// Deletes expired sessions; the next session deadline.
fn purge_sessions(engine: &Engine) -> Option<i64> {
    engine.purge_expired_sessions().unwrap_or_else(|e| {
        tracing::error!(error = %e, "purging expired sessions failed");
        Some(now_ms() + 1000)
    })
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs until `shutdown` turns true.
pub async fn run(engine: Engine, mut shutdown: watch::Receiver<bool>) {
    loop {
        let next = earliest(engine.purge_expired().await, purge_sessions(&engine));
        let until_next = async {
            match next {
                Some(deadline) => {
                    let wait = Duration::from_millis((deadline - now_ms()).max(0) as u64);
                    tokio::time::sleep(wait).await
                }
                // Nothing stored: sleep until an invite or session is created.
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
