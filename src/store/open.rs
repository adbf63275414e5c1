//! The checks around opening a data directory: private, with free space,
//! not held by another process, in a layout this build reads.

use super::schema::{LAYOUT, LAYOUT_KEY};
use super::{StoreError, SEGMENT_SIZE};
use std::path::Path;

/// Free space below which the server refuses to start: with less, the first
/// burst of writes would fail, so an operator is better told at once.
pub const MIN_FREE_SPACE: u64 = 8 * 1024 * 1024;

pub(crate) fn require_free_space(dir: &Path) -> Result<(), StoreError> {
    let free = fs2::available_space(dir).map_err(|e| StoreError::io("measure", dir, e))?;
    if free < MIN_FREE_SPACE {
        return Err(StoreError::Unusable(format!(
            "only {} KiB free on its file system; at least {} MiB are needed",
            free / 1024,
            MIN_FREE_SPACE / (1024 * 1024)
        )));
    }
    Ok(())
}

/// sled reports a directory another process holds as a raw `Os { code: 11 … }`
/// text; try its lock (the same `flock` on `db`) first and say what it means.
pub(crate) fn require_unlocked(dir: &Path) -> Result<(), StoreError> {
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
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(StoreError::Unusable(format!(
            "{} is in use by another keystrate process (a running server holds it; stop it \
             first, or use `keystrate user …` / `keystrate keys …`, which go through its admin socket)",
            dir.display()
        ))),
        // Unlocked when `file` closes; sled takes the lock itself next.
        _ => Ok(()),
    }
}

pub(crate) fn check_layout(db: &sled::Db) -> Result<(), StoreError> {
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
pub(crate) fn check_segment_size(dir: &Path) -> Result<(), StoreError> {
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
    StoreError::Unusable(format!(
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
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::io("create", dir, e));
    }
    let mode = std::fs::metadata(dir)
        .map_err(|e| StoreError::io("read the mode of", dir, e))?
        .permissions()
        .mode()
        & 0o777;
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

/// Opening a store replays sled's log, which allocates and frees a great
/// deal; jemalloc would hand the freed pages back only after its decay time
/// (10 s), so they are returned now.
pub(crate) fn release_freed_memory() {
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
