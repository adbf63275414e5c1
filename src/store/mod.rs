//! The narrow layer over sled. Every tree the engine uses is opened here,
//! every multi-record change goes through [`Store::write`] as one sled
//! transaction, and [`Store::durable`] waits for the group-commit flusher.
//!
//! Records are JSON so that a data directory can be inspected with a few
//! lines of code; keys are chosen so that the listings the engine needs are
//! prefix scans.

mod combiner;
mod flusher;
mod migrate;

use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;
use std::path::Path;
use std::sync::Arc;

pub use combiner::Change;
use combiner::Combiner;
pub use flusher::Flusher;

/// Separator inside composite keys. Ids never contain a NUL byte.
pub const SEP: u8 = 0;

/// Storage failures surface as this message; the engine maps it to an
/// internal error without losing the cause in the logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(pub String);

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// All trees of the server.
#[derive(Clone)]
pub struct Store {
    pub db: sled::Db,
    /// `user id` → user record (password hash).
    pub users: sled::Tree,
    /// `sha256(session token)` → session record.
    pub sessions: sled::Tree,
    /// `expiry ms (big endian) ++ sha256(session token)` → empty, ordered by
    /// deadline, for the purge of expired sessions.
    pub session_expiry: sled::Tree,
    /// `doc id` → document record.
    pub docs: sled::Tree,
    /// `doc \0 user id` → permission level.
    pub perms: sled::Tree,
    /// `user id \0 doc` → permission level (index for "my documents").
    pub user_docs: sled::Tree,
    /// `doc \0 <invite key's 32 bytes>` → invite record. Every lookup of an invite
    /// names its document, so the document's invites are a prefix scan and
    /// no separate index is stored: sled 0.34 keeps tens of bytes in memory
    /// per stored key (see docs/benchmarks.md).
    pub invites: sled::Tree,
    /// `expiry ms (big endian) \0 doc \0 <invite key's 32 bytes>` → empty,
    /// ordered by deadline.
    pub expiry: sled::Tree,
    /// `key id` → API key record (app and account keys).
    pub keys: sled::Tree,
    /// `doc \0 owner id \0 key id` for app keys, `\0 owner id \0 key id` for
    /// account keys → empty.
    pub key_index: sled::Tree,
    all: AllTrees,
    flusher: Flusher,
    combiner: Combiner,
    /// Last, so that the queues above close before it joins the threads.
    _writer_threads: Arc<WriterThreads>,
}

/// The flusher's and the combiner's threads. They hold the database, and so
/// its lock, until their queues close; when the last handle on the store
/// goes they are joined, so that the data directory is free again as soon
/// as the store is dropped (the CLI, an import or the next server may open
/// it right after).
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

/// The transactional view of every tree, handed to [`Store::write`] closures.
pub struct Tx<'a> {
    pub users: &'a TransactionalTree,
    pub sessions: &'a TransactionalTree,
    pub docs: &'a TransactionalTree,
    pub perms: &'a TransactionalTree,
    pub user_docs: &'a TransactionalTree,
    pub invites: &'a TransactionalTree,
    pub expiry: &'a TransactionalTree,
    pub keys: &'a TransactionalTree,
    pub key_index: &'a TransactionalTree,
    pub session_expiry: &'a TransactionalTree,
}

/// Result type inside a transaction closure.
pub type TxResult<T, E> = Result<T, ConflictableTransactionError<E>>;

impl Store {
    /// Opens (or creates) the data directory with the default page cache.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_MB)
    }

    /// Opens the data directory with a page cache of `cache_mb` MiB.
    pub fn open_with_cache(dir: &Path, cache_mb: u64) -> Result<Store, StoreError> {
        create_private_dir(dir).map_err(|e| StoreError(e.to_string()))?;
        require_free_space(dir)?;
        require_unlocked(dir)?;
        let migration = migrate::prepare(dir)?;
        check_segment_size(dir)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
            .segment_size(SEGMENT_SIZE)
            .open()?;
        release_freed_memory();
        check_layout(&db)?;
        if let Some(unfinished) = db.get(crate::transfer::IMPORT_MARK)? {
            return Err(StoreError(format!(
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
            crate::transfer::import_marked(&store, &pending.records, note.as_bytes())
                .map_err(StoreError)?;
            tracing::info!(
                from = %pending.from,
                to = %String::from_utf8_lossy(LAYOUT),
                records = pending.records.len(),
                backup = %pending.backup.display(),
                "data directory migrated to the current storage layout; the old one is kept aside"
            );
        }
        Ok(store)
    }

    fn from_db(db: sled::Db) -> Result<Store, StoreError> {
        let tree = |name: &str| db.open_tree(name);
        let trees = AllTrees([
            tree("users")?,
            tree("sessions")?,
            tree("docs")?,
            tree("perms")?,
            tree("user_docs")?,
            tree("invites")?,
            tree("expiry")?,
            tree("keys")?,
            tree("key_index")?,
            tree("session_expiry")?,
        ]);
        let [users, sessions, docs, perms, user_docs, invites, expiry, keys, key_index, session_expiry] =
            trees.0.clone();
        let (flusher, flush_thread) = Flusher::spawn(db.clone());
        let (combiner, write_thread) = Combiner::spawn(trees.clone());
        Ok(Store {
            users,
            sessions,
            docs,
            perms,
            user_docs,
            invites,
            expiry,
            keys,
            key_index,
            session_expiry,
            flusher,
            combiner,
            _writer_threads: Arc::new(WriterThreads(vec![flush_thread, write_thread])),
            all: trees,
            db,
        })
    }

    /// Runs `f` as one atomic transaction over all trees. `f` may run more
    /// than once on conflicts, so it must not have side effects.
    pub fn write<T, E>(&self, f: impl Fn(&Tx) -> TxResult<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.all.write(f)
    }

    /// Applies a change that cannot fail on its own (it only writes)
    /// together with every other such change waiting at the same moment, in
    /// one transaction: sled 0.34 writes its log buffer out on every
    /// transaction, so one per change caps the write rate (see
    /// docs/benchmarks.md). Returns once applied; `durable()` still follows.
    pub async fn write_combined(&self, change: Change) -> Result<(), StoreError> {
        self.combiner.apply(change).await
    }

    /// Waits until every change applied before this call is flushed to disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.flusher.wait().await.map_err(StoreError)
    }

    /// Whether storage answers: a marker write reaches the disk through the
    /// same flusher every change waits for (`/ready`). A full or failing
    /// disk, or a stopped flusher, is an error.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.db.insert(READY_MARKER, &now.to_be_bytes())?;
        self.durable().await
    }

    /// Flushes synchronously (shutdown path).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Key of the readiness probe's write, in sled's default tree (which holds
/// nothing else the engine reads).
const READY_MARKER: &[u8] = b"keystrate-ready-probe";

/// sled reports a directory another process holds as a raw `Os { code: 11 … }`
/// text; try its lock (the same `flock` on `db`) first and say what it means.
fn require_unlocked(dir: &Path) -> Result<(), StoreError> {
    use fs2::FileExt;
    let Ok(file) = std::fs::File::open(dir.join("db")) else {
        return Ok(()); // a new directory: nobody holds it
    };
    // A store dropped a moment ago (in this process, or a server that just
    // exited) lets go of the lock only once sled's background writers end,
    // a few milliseconds later; a running server never does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut locked = file.try_lock_exclusive();
    while locked
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
        locked = file.try_lock_exclusive();
    }
    match locked {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(StoreError(format!(
            "{} is in use by another keystrate process (a running server holds it; stop it \
             first, or use `keystrate user …` / `keystrate keys …`, which go through its admin socket)",
            dir.display()
        ))),
        // Unlocked when `file` closes; sled takes the lock itself next.
        _ => Ok(()),
    }
}

/// The trees in the order of [`Tx`]'s fields.
#[derive(Clone)]
pub(crate) struct AllTrees([sled::Tree; 10]);

impl AllTrees {
    pub(crate) fn write<T, E>(&self, f: impl Fn(&Tx) -> TxResult<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let trees: Vec<&sled::Tree> = self.0.iter().collect();
        let result = trees.as_slice().transaction(|t| {
            f(&Tx {
                users: &t[0],
                sessions: &t[1],
                docs: &t[2],
                perms: &t[3],
                user_docs: &t[4],
                invites: &t[5],
                expiry: &t[6],
                keys: &t[7],
                key_index: &t[8],
                session_expiry: &t[9],
            })
        });
        match result {
            Ok(v) => Ok(v),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::from(e).into()),
        }
    }
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

/// Opening a store replays sled's log, which allocates and frees a great
/// deal; jemalloc would hand the freed pages back only after its decay time
/// (10 s), so they are returned now.
fn release_freed_memory() {
    // MALLCTL_ARENAS_ALL: every arena.
    let purge_all = c"arena.4096.purge";
    // SAFETY: a "purge" mallctl reads and writes nothing through the
    // pointers, which are null; the name is a valid C string.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            purge_all.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::warn!(rc, "jemalloc did not purge its arenas");
    }
}

/// The on-disk layout this build reads, kept in the default tree so that a
/// data directory written with another layout is refused, not misread.
pub(crate) const LAYOUT: &[u8] = b"3";
pub const LAYOUT_KEY: &[u8] = b"keystrate-layout";

fn check_layout(db: &sled::Db) -> Result<(), StoreError> {
    match db.get(LAYOUT_KEY)? {
        Some(found) if found == LAYOUT => Ok(()),
        // Only sled's default tree: a new data directory.
        None if db.tree_names().len() == 1 => {
            db.insert(LAYOUT_KEY, LAYOUT)?;
            db.flush()?;
            Ok(())
        }
        found => Err(other_layout(found.as_deref())),
    }
}

/// Layout 1 was written with sled's default 512 KiB segments, which sled
/// cannot change across restarts: refuse it before sled does in its own
/// words. sled keeps its parameters in `<dir>/conf`.
fn check_segment_size(dir: &Path) -> Result<(), StoreError> {
    let Ok(conf) = std::fs::read(dir.join("conf")) else {
        return Ok(());
    };
    let ours = format!("segment_size: {SEGMENT_SIZE}\n");
    if conf.windows(ours.len()).any(|w| w == ours.as_bytes()) {
        Ok(())
    } else {
        Err(other_layout(None))
    }
}

/// `found` is the layout a data directory records; none means layout 1.
fn other_layout(found: Option<&[u8]>) -> StoreError {
    StoreError(format!(
        "the data directory uses storage layout {} but this build reads layout {}; \
         start with a new --data directory",
        found.map_or("1".into(), |v| String::from_utf8_lossy(v).into_owned()),
        String::from_utf8_lossy(LAYOUT)
    ))
}

/// Makes the data directory readable by its owner only: it holds password
/// hashes and API key secrets. A new one is created 0700; an existing one
/// that others can enter is tightened to 0700, with a warning. If that is
/// not allowed (another owner), the server still starts and says so.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => tracing::warn!(
                dir = %dir.display(),
                was = format!("{mode:o}"),
                "the data directory was open to other users; its mode is now 700"
            ),
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                error = %e,
                "the data directory is open to other users and could not be made private"
            ),
        }
    }
    Ok(())
}

/// Free space below which the server refuses to start: with less, the first
/// burst of writes would fail, so an operator is better told at once.
pub const MIN_FREE_SPACE: u64 = 8 * 1024 * 1024;

fn require_free_space(dir: &Path) -> Result<(), StoreError> {
    let free = fs2::available_space(dir).map_err(|e| StoreError(e.to_string()))?;
    if free < MIN_FREE_SPACE {
        return Err(StoreError(format!(
            "only {} KiB free on its file system; at least {} MiB are needed",
            free / 1024,
            MIN_FREE_SPACE / (1024 * 1024)
        )));
    }
    Ok(())
}

/// Builds a composite key `a \0 b \0 …`.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(part);
    }
    out
}

/// The prefix `a \0 b \0` that every key starting with these parts shares.
pub fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = key(parts);
    out.push(SEP);
    out
}

/// The last part of a composite key.
pub fn last_part(key: &[u8]) -> &[u8] {
    match key.iter().rposition(|b| *b == SEP) {
        Some(i) => &key[i + 1..],
        None => key,
    }
}

/// Reads a JSON record from a plain tree.
pub fn get_json<T: DeserializeOwned>(tree: &sled::Tree, k: &[u8]) -> Result<Option<T>, StoreError> {
    match tree.get(k)? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Writes a JSON record inside a transaction.
pub fn tx_put_json<T: Serialize>(
    tree: &TransactionalTree,
    k: &[u8],
    value: &T,
) -> Result<(), UnabortableTransactionError> {
    let bytes = serde_json::to_vec(value).expect("records always serialise");
    tree.insert(k, bytes)?;
    Ok(())
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError(format!("corrupt record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

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
                store.users.insert(i.to_be_bytes(), &[]).unwrap();
                store.write_combined(Box::new(|_| Ok(()))).await.unwrap();
                store.durable().await.unwrap();
            });
        }
    }
}
