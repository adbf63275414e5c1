//! The expiry index, read in deadline order: which invites and sessions
//! are due now, and the next deadline after them, so that the expiry task
//! sleeps until then with nothing held in memory.

use super::schema::*;
use super::{Store, StoreError};

/// Entries due now (at most the batch asked for), and the deadline of the
/// first entry past them: not yet due, or, when the batch filled up, due
/// too (so the caller comes back at once). `None`: nothing else is stored.
#[derive(Debug)]
pub struct Due<T> {
    pub due: Vec<T>,
    pub next: Option<i64>,
}

/// A session past its expiry, with the deadline its index entry names.
#[derive(Debug, Clone)]
pub struct DueSession {
    pub id: SessionId,
    pub expires_at: i64,
}

impl Store {
    /// Invites whose expiry is at or before `now`, oldest deadline first.
    /// Malformed index entries (never written by this build) are dropped.
    pub fn due_invites(&self, now: i64, batch: usize) -> Result<Due<InviteRef>, StoreError> {
        self.due(
            &self.trees.expiry,
            now,
            batch,
            parse_invite_expiry_key,
            |i| i.expires_at,
        )
    }

    /// Sessions whose expiry is at or before `now`, oldest deadline first.
    pub fn due_sessions(&self, now: i64, batch: usize) -> Result<Due<DueSession>, StoreError> {
        let parse = |k: &[u8]| {
            parse_session_expiry_key(k).map(|(expires_at, id)| DueSession { id, expires_at })
        };
        self.due(&self.trees.session_expiry, now, batch, parse, |s| {
            s.expires_at
        })
    }

    fn due<T>(
        &self,
        index: &sled::Tree,
        now: i64,
        batch: usize,
        parse: impl Fn(&[u8]) -> Option<T>,
        deadline: impl Fn(&T) -> i64,
    ) -> Result<Due<T>, StoreError> {
        let mut due = Vec::new();
        for k in index.iter().keys() {
            let k = k?;
            let Some(entry) = parse(&k) else {
                tracing::error!("malformed expiry index entry dropped");
                index.remove(&k)?;
                continue;
            };
            let at = deadline(&entry);
            if at > now || due.len() == batch {
                return Ok(Due {
                    due,
                    next: Some(at),
                });
            }
            due.push(entry);
        }
        Ok(Due { due, next: None })
    }

    /// Indexes sessions stored before the `session_expiry` index existed,
    /// so that the purge finds them too. Runs when a store is opened.
    pub(crate) fn index_unindexed_sessions(&self) -> Result<(), StoreError> {
        let t = &self.trees;
        if !t.session_expiry.is_empty() || t.sessions.is_empty() {
            return Ok(());
        }
        let mut indexed = 0usize;
        self.each_session(|id, record| {
            let key = session_expiry_key(record.expires_at, &id);
            t.session_expiry.insert(&key[..], &[])?;
            indexed += 1;
            Ok(())
        })?;
        tracing::info!(indexed, "indexed sessions stored by an older build");
        Ok(())
    }
}
