//! The background task that deletes invites and sessions at their expiry
//! instant. Like mini-redis's purge task it sleeps until the next deadline
//! (read from the ordered `expiry` and `session_expiry` indexes, so nothing
//! is held in memory) and is woken early when an invite or a session is
//! created.

use super::invites::{split_doc_key, DueInvite};
use super::{now_ms, Engine};
use std::time::Duration;
use tokio::sync::watch;

/// Most invites deleted in one transaction: a burst of expiries costs one
/// sled transaction per batch and document, not one per invite.
const BATCH: usize = 256;

/// An expiry index entry: `deadline (8 bytes) \0 doc \0 <key bytes>`.
struct Due {
    deadline: i64,
    doc: String,
    invite_key: String,
    index_key: Vec<u8>,
}

impl Due {
    fn parse(index_key: &[u8]) -> Option<Due> {
        let deadline = i64::from_be_bytes(index_key.get(..8)?.try_into().ok()?);
        let (doc, invite_key) = split_doc_key(index_key.get(9..)?)?;
        Some(Due {
            deadline,
            doc,
            invite_key,
            index_key: index_key.to_vec(),
        })
    }
}

impl Engine {
    /// Wakes the expiry task to recompute its next deadline.
    pub(crate) fn expiry_changed(&self) {
        self.inner.expiry_changed.notify_one();
    }

    /// Up to `BATCH` index entries in deadline order, and the deadline of
    /// the first entry not due yet.
    fn due_now(&self) -> crate::engine::Result<(Vec<Due>, Option<i64>)> {
        let now = now_ms();
        let mut due = Vec::new();
        for item in self.store().expiry.iter().keys() {
            let k = item.map_err(crate::store::StoreError::from)?;
            let Some(entry) = Due::parse(&k) else {
                tracing::error!("malformed expiry index entry dropped");
                self.store()
                    .expiry
                    .remove(&k)
                    .map_err(crate::store::StoreError::from)?;
                continue;
            };
            if entry.deadline > now {
                return Ok((due, Some(entry.deadline)));
            }
            due.push(entry);
            if due.len() == BATCH {
                return Ok((due, Some(now)));
            }
        }
        Ok((due, None))
    }

    /// Deletes every invite due now; returns the next deadline.
    pub async fn purge_expired(&self) -> Option<i64> {
        loop {
            let (due, next) = match self.due_now() {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %e, "reading the expiry index failed");
                    return Some(now_ms() + 1000);
                }
            };
            let mut by_doc: Vec<(String, Vec<DueInvite>)> = Vec::new();
            for entry in due {
                let item = (entry.invite_key, entry.index_key);
                match by_doc.iter_mut().find(|(doc, _)| *doc == entry.doc) {
                    Some((_, items)) => items.push(item),
                    None => by_doc.push((entry.doc, vec![item])),
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
    if let Err(e) = engine.index_unindexed_sessions() {
        tracing::error!(error = %e, "indexing stored sessions failed");
    }
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
