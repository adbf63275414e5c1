//! Older storage layouts are migrated at start, never stranded: the old
//! directory is copied aside (`<data>.layout-N-backup-<unix seconds>`), its
//! records are read with the old key encodings, and the directory is
//! rebuilt in the current layout by the same code as `keystrate import`.
//! A layout newer than this build is refused with the export/import
//! commands that move its data. See docs/architecture.md ("Storage layouts").

use super::records::{each_record_in, InviteLayout, StoredRecord};
use super::schema::{account_key, LAYOUT, LAYOUT_KEY, LEGACY_ACCOUNTS};
use super::trees::Trees;
use super::{StoreError, SEGMENT_SIZE};
use std::path::{Path, PathBuf};

/// Records read from an older layout, to import once the directory is
/// rebuilt, and where the old directory was copied.
pub(crate) struct Pending {
    pub(crate) records: Vec<StoredRecord>,
    pub(crate) from: String,
    pub(crate) backup: PathBuf,
}

/// Reads an older store's records, copies it aside and empties `dir`; none
/// when `dir` is new or already in the current layout.
pub(crate) fn prepare(dir: &Path) -> Result<Option<Pending>, StoreError> {
    // sled keeps its parameters in `<dir>/conf` (text, then a checksum);
    // without it the store is new.
    let Ok(conf) = std::fs::read(dir.join("conf")) else {
        return Ok(None);
    };
    let segment_size = String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("segment_size: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(SEGMENT_SIZE);
    let db = sled::Config::new()
        .path(dir)
        .segment_size(segment_size)
        .open()?;
    let layout = match db.get(LAYOUT_KEY)? {
        Some(found) => String::from_utf8_lossy(&found).into_owned(),
        // Only sled's default tree: a new data directory.
        None if db.tree_names().len() == 1 => return Ok(None),
        None => "1".to_string(),
    };
    let invites = match layout.as_str() {
        "1" => InviteLayout::KeyOnly,
        "2" => InviteLayout::HexUnderDoc,
        // Layout 2 written with sled's old segment size is read like layout 2.
        current if current.as_bytes() == LAYOUT && segment_size == SEGMENT_SIZE => return Ok(None),
        current if current.as_bytes() == LAYOUT => InviteLayout::BytesUnderDoc,
        newer => return Err(newer_layout(dir, newer)),
    };
    let mut records = Vec::new();
    each_record_in(&db, invites, |record| {
        records.push(record);
        Ok(())
    })?;
    db.flush()?;
    drop(db);
    let backup = backup_path(dir, &layout);
    copy_dir(dir, &backup)
        .map_err(|e| StoreError::io("copy aside the data directory to", &backup, e))?;
    empty_dir(dir).map_err(|e| StoreError::io("empty", dir, e))?;
    Ok(Some(Pending {
        records,
        from: layout,
        backup,
    }))
}

fn backup_path(dir: &Path, layout: &str) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = dir.file_name().map_or_else(
        || "keystrate-data".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    dir.with_file_name(format!("{name}.layout-{layout}-backup-{seconds}"))
}

/// Copies a sled directory (files and sub-directories) to a new, private one.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
        // A stale admin socket is not data.
    }
    Ok(())
}

/// Removes everything inside `dir`, keeping the directory and its mode.
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

fn newer_layout(dir: &Path, found: &str) -> StoreError {
    let dir = dir.display();
    StoreError::Unusable(format!(
        "the data directory uses storage layout {found}, newer than the layout {} this build \
         reads; move its data with the newer build: `keystrate export --data {dir} --out \
         keystrate.jsonl`, then with this one: `keystrate import --data NEW_DIR --in \
         keystrate.jsonl`",
        String::from_utf8_lossy(LAYOUT)
    ))
}

/// Moves the per-account JSON lists of older stores (`dir_accounts`) into
/// `dir_account_keys` and `dir_account_counts`, all in one transaction and
/// flushed before the server starts: a crash leaves either the old layout
/// or the new one. Accounts over the cap keep their keys (they just cannot
/// add more).
pub(crate) fn account_lists(trees: &Trees) -> Result<(), StoreError> {
    use sled::transaction::{ConflictableTransactionError, TransactionError};
    use sled::Transactional;
    let present = trees
        .db
        .tree_names()
        .iter()
        .any(|n| n == LEGACY_ACCOUNTS.as_bytes());
    if !present {
        return Ok(());
    }
    let legacy = trees.db.open_tree(LEGACY_ACCOUNTS)?;
    if legacy.is_empty() {
        return Ok(());
    }
    let mut lists = Vec::new();
    for entry in legacy.iter() {
        let (account, list) = entry?;
        let keys: Vec<String> = super::schema::decode(&list, "dir_accounts")?;
        let account = super::schema::utf8(&account, "dir_accounts")?;
        lists.push((account, keys));
    }
    let result = (&legacy, &trees.account_keys, &trees.account_counts).transaction(
        |(legacy, account_keys, counts)| {
            for (account, keys) in &lists {
                for identity in keys {
                    account_keys.insert(account_key(account, identity), &[])?;
                }
                counts.insert(account.as_bytes(), &(keys.len() as u32).to_be_bytes())?;
                legacy.remove(account.as_bytes())?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        },
    );
    match result {
        Ok(()) => {}
        Err(TransactionError::Storage(e)) => return Err(e.into()),
        Err(TransactionError::Abort(())) => unreachable!("the migration never aborts"),
    }
    trees.db.flush()?;
    tracing::info!(
        accounts = lists.len(),
        "key directory accounts migrated to one record per key"
    );
    Ok(())
}
