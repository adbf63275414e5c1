//! What can go wrong in storage, with the cause kept as the source error.
//! Converting a `StoreError` logs nothing: whoever turns it into a reply or
//! an exit decides whether and how to report it.

use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database itself failed (I/O, corruption, a sled bug).
    #[error("storage error: {0}")]
    Database(#[from] sled::Error),
    /// A stored record does not decode as its kind.
    #[error("storage error: corrupt {what} record")]
    Corrupt {
        what: &'static str,
        #[source]
        source: Option<Arc<serde_json::Error>>,
    },
    /// A file-system step around the database (creating, copying, emptying
    /// the data directory).
    #[error("storage error: cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The data directory cannot be used as it is; the text says why and
    /// what to do (another process holds it, a layout this build cannot
    /// read, an unfinished import, too little free space).
    #[error("storage error: {0}")]
    Unusable(String),
    /// The writer threads have stopped: the store is being dropped.
    #[error("storage error: storage is shutting down")]
    ShuttingDown,
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str) -> StoreError {
        StoreError::Corrupt { what, source: None }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
        e: std::io::Error,
    ) -> StoreError {
        StoreError::Io {
            action,
            path: path.to_path_buf(),
            source: Arc::new(e),
        }
    }
}

/// A checked change that the store refused: what it was told to find (or
/// not to find) was not so when the change was applied, and nothing of the
/// change list was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    DocumentExists(String),
    UserExists(crate::model::User),
    NoSuchUser(crate::model::User),
}

/// Why a [`crate::store::Change`] list was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}
