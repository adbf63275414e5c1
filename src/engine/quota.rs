//! How many invites each document holds, so that creating one can be
//! refused past the operator's cap (`--max-invites-per-document`) without
//! scanning the document's invites on every create.

use super::{Error, Result};
use dashmap::DashMap;

/// The cap's default: far above what an invites panel shows, far below what
/// makes a listing or a demotion costly (docs/protocol.md).
pub const DEFAULT_MAX_INVITES: usize = 10_000;

/// Stored invites per document, counted from storage the first time a
/// document is seen and kept up to date by every change that adds or drops
/// invites. Stored, not valid: an expired invite is dropped at its expiry
/// instant, and a used-up one still answers its acceptors' repeated accepts.
pub(crate) struct InviteCounts {
    max: usize,
    counts: DashMap<String, usize>,
}

impl InviteCounts {
    pub(crate) fn new(max: usize) -> InviteCounts {
        InviteCounts {
            max,
            counts: DashMap::new(),
        }
    }

    /// Takes a place for one new invite of `doc`. `stored` counts what
    /// storage holds; it is asked when the document is first seen and again
    /// before refusing, so a count that drifted can only cost a recount,
    /// never a wrong refusal.
    pub(crate) fn take(&self, doc: &str, stored: impl Fn() -> Result<usize>) -> Result<()> {
        let mut count = match self.counts.get_mut(doc) {
            Some(count) => count,
            None => {
                let n = stored()?;
                self.counts.entry(doc.to_string()).or_insert(n)
            }
        };
        if *count >= self.max {
            *count = stored()?;
            if *count >= self.max {
                crate::observe::refused("max_invites_per_document");
                return Err(Error::TooManyInvites { max: self.max });
            }
        }
        *count += 1;
        Ok(())
    }

    /// Gives back `n` places: invites dropped, or a create that failed.
    pub(crate) fn give_back(&self, doc: &str, n: usize) {
        if let Some(mut count) = self.counts.get_mut(doc) {
            *count = count.saturating_sub(n);
        }
    }

    /// Forgets a deleted document.
    pub(crate) fn forget(&self, doc: &str) {
        self.counts.remove(doc);
    }
}
