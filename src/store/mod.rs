//! The storage boundary. Everything the engine, the key directory, export
//! and import keep goes through [`Store`]'s typed calls: reads in the
//! product's terms ([`read`], [`expiry`], [`directory`]), atomic lists of
//! [`Change`]s, and the document locks that make "read, then write"
//! sequences safe ([`locks`]). sled is the backend; nothing outside this
//! module sees a tree, a transaction or a key byte (the layouts are all in
//! [`schema`]). docs/architecture.md ("Storage") has the map.

mod batch;
mod change;
mod directory;
mod error;
mod expiry;
mod locks;
mod migrate;
mod open;
mod read;
mod records;
pub mod schema;
mod trees;

use std::path::Path;
use std::sync::Arc;

use batch::Batcher;
pub use batch::Flusher;
pub use change::{Change, Committed};
pub use error::{CommitError, Refusal, StoreError};
pub use expiry::{Due, DueSession};
pub use locks::{AllDocumentsLock, DirectoryLock, DocumentLock, Held, SharedDocumentLock};
pub use open::MIN_FREE_SPACE;
pub use read::{Census, KeysOf};
pub use records::StoredRecord;
pub use schema::{
    Acceptance, DocRecord, Encoded, IdentityRecord, InviteRecord, InviteRef, KeyRecord, SessionId,
    SessionRecord, UserRecord,
};
use trees::Trees;

/// A handle on one data directory; cheap to clone.
#[derive(Clone)]
pub struct Store {
    trees: Trees,
    locks: Arc<locks::Locks>,
    flusher: Batcher<()>,
    combiner: Batcher<Change>,
    /// Last, so that the queues above close before it joins the threads.
    _writer_threads: Arc<WriterThreads>,
}

/// The batching writers' threads. They hold the database, and so its lock,
/// until their queues close; when the last handle on the store goes they
/// are joined, so that the data directory is free again as soon as the
/// store is dropped (the CLI, an import or the next server may open it
/// right after).
struct WriterThreads(Vec<std::thread::JoinHandle<()>>);

impl Drop for WriterThreads {
    fn drop(&mut self) {
        // Bounded: a flusher handle kept elsewhere keeps its thread alive.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for thread in self.0.drain(..) {
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Most changes in one combined transaction, to bound its size.
const MAX_COMBINED: usize = 1024;

impl Store {
    /// Opens (or creates) the data directory with the default page cache.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_MB)
    }

    /// Opens the data directory with a page cache of `cache_mb` MiB. An
    /// older layout is migrated first (see `migrate`).
    pub fn open_with_cache(dir: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        open::create_private_dir(dir)?;
        open::require_free_space(dir)?;
        open::require_unlocked(dir)?;
        let migration = migrate::prepare(dir)?;
        open::check_segment_size(dir)?;
        let db = tuned_sled(dir, cache_mb).open()?;
        open::release_freed_memory();
        open::check_layout(&db)?;
        if let Some(unfinished) = db.get(schema::IMPORT_MARK)? {
            return Err(StoreError::Unusable(format!(
                "an import into {} did not finish; delete the directory and run the import \
                 again{}",
                dir.display(),
                String::from_utf8_lossy(&unfinished)
            )));
        }
        let store = Self::from_db(db)?;
        if let Some(pending) = migration {
            let note = format!(
                " (or, for the layout migration, move {} back to {})",
                pending.backup.display(),
                dir.display()
            );
            store
                .import(&pending.records, note.as_bytes())
                .map_err(|e| match e {
                    CommitError::Store(e) => e,
                    CommitError::Refused(r) => {
                        StoreError::Unusable(format!("migrating the layout: {r:?}"))
                    }
                })?;
            tracing::info!(
                from = %pending.from,
                to = %String::from_utf8_lossy(schema::LAYOUT),
                records = pending.records.len(),
                backup = %pending.backup.display(),
                "data directory migrated to the current storage layout; the old one is kept aside"
            );
        }
        migrate::account_lists(&store.trees)?;
        store.index_unindexed_sessions()?;
        Ok(store)
    }

    fn from_db(db: sled::Db) -> Result<Store, StoreError> {
        let trees = Trees::open(db)?;
        let (flusher, flush_thread) = batch::flusher(trees.db.clone());
        let combined = trees.clone();
        let (combiner, write_thread) = Batcher::spawn(
            "keystrate-write",
            MAX_COMBINED,
            move |changes: &[Change]| {
                let result = change::apply(&combined, changes)
                    .map(drop)
                    .map_err(|e| match e {
                        CommitError::Store(e) => e,
                        CommitError::Refused(r) => {
                            StoreError::Unusable(format!("a combined change was refused: {r:?}"))
                        }
                    });
                if let Err(e) = &result {
                    tracing::error!(error = %e, "combined write failed");
                }
                result
            },
        );
        Ok(Store {
            trees,
            locks: Arc::new(locks::Locks::new()),
            flusher,
            combiner,
            _writer_threads: Arc::new(WriterThreads(vec![flush_thread, write_thread])),
        })
    }

    /// Applies `changes` as one atomic transaction: all or nothing. Changes
    /// whose checks depend on earlier reads are committed through a lock's
    /// guard ([`DocumentLock::commit`]); this is for those that need none
    /// (accounts, sessions, an import). Returns once applied; replies wait
    /// for [`Store::durable`] too.
    pub fn commit(&self, changes: &[Change]) -> Result<Committed, CommitError> {
        change::apply(&self.trees, changes)
    }

    /// Waits until every change applied before this call is flushed to disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.flusher.submit(()).await
    }

    /// Whether storage answers: a marker write reaches the disk through the
    /// same flusher every change waits for (`/ready`). A full or failing
    /// disk, or a stopped flusher, is an error.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.trees
            .db
            .insert(schema::READY_MARKER, &now.to_be_bytes())?;
        self.durable().await
    }

    /// Flushes synchronously (shutdown path).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.trees.db.flush()?;
        Ok(())
    }
}

/// sled configured as the server opens it (page cache, segment size), for
/// the benchmark's baselines to measure bare sled the same way.
pub fn tuned_sled(dir: &Path, cache_mb: u64) -> sled::Config {
    sled::Config::new()
        .path(dir)
        .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
        .segment_size(SEGMENT_SIZE)
}

/// sled's page cache, in MiB. sled's default (1 GiB) lets memory grow with
/// the stored invites as they are touched, against docs/protocol.md, "Invites". sled
/// counts a cached leaf by its size on disk, and a leaf takes more than
/// that in memory. With the vendored sled's prompt LRU, 8 MiB keeps a burst
/// of 20,000 expiring invites among a million within the 64 MB budget,
/// where 16 MiB overshoots it by ~5 MB; 8 MiB costs ~5% of the durable
/// write rate against 16 MiB (docs/benchmarks.md).
pub const DEFAULT_CACHE_MB: u64 = 8;

/// sled's log segment size. With 2 MiB segments (sled's default is 512 KiB)
/// the first start after a million invites replays the log in 0.9 s instead
/// of 1.2 s; larger ones cost memory in write buffers (docs/benchmarks.md).
pub(crate) const SEGMENT_SIZE: usize = 2 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, User};

    fn invite(doc: &str, key_byte: &str, expires_at: i64) -> InviteRecord {
        InviteRecord {
            key: key_byte.repeat(32),
            doc: doc.to_string(),
            permissions: "r".into(),
            created_at: 0,
            expires_at,
            created_by: User::local("owner"),
            max_uses: None,
            accepted_by: Vec::new(),
        }
    }

    fn document(id: &str) -> Change {
        Change::CreateDocument {
            id: id.to_string(),
            record: DocRecord {
                created_at: 0,
                created_by: User::local("owner"),
            },
        }
    }

    /// The CLI, an import or the next server opens a directory right after
    /// the previous store on it is dropped: its lock must be free by then,
    /// not once the writer threads get around to ending.
    #[test]
    fn a_dropped_store_frees_its_directory_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        for i in 0..50u32 {
            let store = Store::open(dir.path()).expect("opens right after the last drop");
            runtime.block_on(async {
                let doc = format!("doc{i}");
                let shared = store.share_document(&doc).await;
                shared.add_invite(invite(&doc, "ab", 1)).await.unwrap();
                drop(shared);
                store.durable().await.unwrap();
            });
        }
    }

    /// A checked change that fails refuses its whole list: nothing of it is
    /// written, however it was ordered.
    #[test]
    fn a_refused_list_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.commit(&[document("doc")]).unwrap();
        let bob = User::local("bob");
        let grant = Change::SetPermission {
            doc: "doc".into(),
            user: bob.clone(),
            level: Level::Write,
        };
        let refused = store.commit(&[grant, document("doc")]).unwrap_err();
        assert!(
            matches!(&refused, CommitError::Refused(Refusal::DocumentExists(id)) if id == "doc"),
            "{refused:?}"
        );
        assert_eq!(store.permission("doc", &bob).unwrap(), None);
        assert_eq!(store.census().user_documents, 0);
    }

    /// An invite is stored with its expiry entry and dropped with it; the
    /// commit says how many of the dropped invites were still there.
    #[test]
    fn invites_come_and_go_with_their_expiry_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (early, late) = (invite("doc", "01", 1_000), invite("doc", "02", 2_000));
        let other = invite("doc2", "03", 1_500);
        let puts: Vec<Change> = [&early, &late, &other]
            .map(|i| Change::PutInvite((*i).clone()))
            .to_vec();
        store.commit(&puts).unwrap();
        assert_eq!(store.invite_count("doc").unwrap(), 2);
        assert_eq!(
            store.invite("doc", &early.key).unwrap().unwrap().expires_at,
            1_000
        );
        assert_eq!(
            store.invite("doc", "not a key").unwrap().map(|i| i.key),
            None
        );

        let due = store.due_invites(1_600, 10).unwrap();
        assert_eq!(due.due, [early.reference(), other.reference()]);
        assert_eq!(due.next, Some(2_000));
        let batch = store.due_invites(5_000, 1).unwrap();
        assert_eq!((batch.due.len(), batch.next), (1, Some(1_500)));

        let drops =
            [early.reference(), early.reference(), other.reference()].map(Change::DropInvite);
        assert_eq!(store.commit(&drops).unwrap().invites_dropped, 2);
        let census = store.census();
        assert_eq!((census.invites, census.invite_expiries), (1, 1));
        assert_eq!(
            store.due_invites(5_000, 10).unwrap().due,
            [late.reference()]
        );
    }
}
