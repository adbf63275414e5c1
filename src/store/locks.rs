//! The locks that make "read, then write" sequences safe: the engine reads
//! under a document's lock and commits its change list through the guard.
//! With sled they are in-process striped locks; a database backend takes
//! the same guards as a transaction holding a row or advisory lock.

use super::{Change, CommitError, Committed, InviteRecord, Store, StoreError};
use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A fixed set of striped locks (memory does not grow with documents), and
/// one for the key directory's writes.
pub(crate) struct Locks {
    documents: Vec<RwLock<()>>,
    directory: Mutex<()>,
}

impl Locks {
    pub(crate) fn new() -> Locks {
        Locks {
            documents: (0..256).map(|_| RwLock::new(())).collect(),
            directory: Mutex::new(()),
        }
    }

    fn document(&self, doc: &str) -> &RwLock<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        doc.hash(&mut h);
        &self.documents[(h.finish() as usize) % self.documents.len()]
    }
}

/// An exclusive hold: every check made while holding it still holds when
/// [`Held::commit`] writes.
pub struct Held<'s, G> {
    store: &'s Store,
    _guard: G,
}

/// Exclusive hold on one document (and whatever shares its stripe).
pub type DocumentLock<'s> = Held<'s, RwLockWriteGuard<'s, ()>>;

/// Every document at once, in a fixed order (so it cannot deadlock with the
/// one-lock holders): for the rare change that spans all of a user's
/// documents (deleting the user).
pub type AllDocumentsLock<'s> = Held<'s, Vec<RwLockWriteGuard<'s, ()>>>;

/// The key directory's writes, one at a time.
pub type DirectoryLock<'s> = Held<'s, MutexGuard<'s, ()>>;

/// Shared hold on a document, for changes that only add new records
/// (invites): they cannot conflict with one another, only with exclusive
/// changes (a demotion must not miss one), so they are written together in
/// one combined transaction instead of queueing one by one.
pub struct SharedDocumentLock<'s> {
    store: &'s Store,
    _guard: RwLockReadGuard<'s, ()>,
}

impl Store {
    /// Takes `doc`'s lock for a read-then-write change.
    pub async fn lock_document(&self, doc: &str) -> DocumentLock<'_> {
        Held {
            store: self,
            _guard: self.locks.document(doc).write().await,
        }
    }

    /// Shares `doc`'s lock among changes that only add invites.
    pub async fn share_document(&self, doc: &str) -> SharedDocumentLock<'_> {
        SharedDocumentLock {
            store: self,
            _guard: self.locks.document(doc).read().await,
        }
    }

    /// Takes every document's lock.
    pub async fn lock_all_documents(&self) -> AllDocumentsLock<'_> {
        let mut guards = Vec::with_capacity(self.locks.documents.len());
        for lock in &self.locks.documents {
            guards.push(lock.write().await);
        }
        Held {
            store: self,
            _guard: guards,
        }
    }

    /// Takes the key directory's write lock.
    pub async fn lock_directory(&self) -> DirectoryLock<'_> {
        Held {
            store: self,
            _guard: self.locks.directory.lock().await,
        }
    }
}

impl<G> Held<'_, G> {
    /// Applies `changes` atomically (see [`Store::commit`]).
    pub fn commit(&self, changes: &[Change]) -> Result<Committed, CommitError> {
        self.store.commit(changes)
    }
}

impl SharedDocumentLock<'_> {
    /// Stores a new invite with its expiry entry, in one transaction with
    /// every other invite added at the same moment. Returns once applied;
    /// [`Store::durable`] still follows.
    pub async fn add_invite(&self, invite: InviteRecord) -> Result<(), StoreError> {
        self.store.combiner.submit(Change::PutInvite(invite)).await
    }
}
