//! Every record of a store, kind by kind: what export reads and import
//! writes (`crate::transfer` turns them into lines and back), and what the
//! layout migration carries from an older directory into a new one.
//! Indexes (a user's documents, expiry, key listings, directory accounts
//! and counts) are not records: [`Store::import`] rebuilds them. Sessions
//! are not carried; logins start afresh.

use super::schema::*;
use super::{Change, CommitError, Store, StoreError};
use crate::model::{Level, User};
use std::collections::BTreeMap;

/// One stored record of any kind.
#[derive(Debug, Clone)]
pub enum StoredRecord {
    User(UserRecord),
    Document {
        id: String,
        record: DocRecord,
    },
    Permission {
        doc: String,
        user: User,
        level: Level,
    },
    Invite(InviteRecord),
    Key(KeyRecord),
    Identity {
        identity_key: String,
        account: String,
        record: Encoded,
    },
    InviteKey {
        account: String,
        invite_key: String,
    },
    Revocation {
        identity_key: String,
        at: i64,
    },
}

/// Where a storage layout keeps an invite's document and key. Everything
/// else is stored alike in layouts 1 to 3, so one reader serves them all.
#[derive(Debug, Clone, Copy)]
pub(crate) enum InviteLayout {
    /// Layout 1: `invite key (hex)` → the record, which holds both.
    KeyOnly,
    /// Layout 2: `doc \0 invite key (hex)`.
    HexUnderDoc,
    /// Layout 3: `doc \0 <invite key's 32 bytes>`.
    BytesUnderDoc,
}

/// A layout 1 invite: its key and document inside the stored JSON.
#[derive(serde::Deserialize)]
struct SelfNamedInvite {
    key: String,
    doc: String,
    #[serde(flatten)]
    rest: InviteRecord,
}

fn read_invite_in(
    layout: InviteLayout,
    key: &[u8],
    bytes: &[u8],
) -> Result<InviteRecord, StoreError> {
    match layout {
        InviteLayout::BytesUnderDoc => read_invite(key, bytes),
        InviteLayout::HexUnderDoc => {
            let split = key
                .iter()
                .position(|b| *b == SEP)
                .ok_or_else(|| StoreError::corrupt("invite"))?;
            let mut invite: InviteRecord = decode(bytes, "invite")?;
            invite.doc = utf8(&key[..split], "invite")?;
            invite.key = utf8(&key[split + 1..], "invite")?;
            Ok(invite)
        }
        InviteLayout::KeyOnly => {
            let named: SelfNamedInvite = decode(bytes, "invite")?;
            Ok(InviteRecord {
                key: named.key,
                doc: named.doc,
                ..named.rest
            })
        }
    }
}

/// Hands every record of `db` to `emit`: by kind, then in storage key
/// order, so the same data always gives the same sequence.
pub(crate) fn each_record_in(
    db: &sled::Db,
    invites: InviteLayout,
    mut emit: impl FnMut(StoredRecord) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let tree = |name: &str| db.open_tree(name);
    for item in tree(USERS)?.iter() {
        emit(StoredRecord::User(decode(&item?.1, "user")?))?;
    }
    for item in tree(DOCS)?.iter() {
        let (id, bytes) = item?;
        emit(StoredRecord::Document {
            id: utf8(&id, "document")?,
            record: decode(&bytes, "document")?,
        })?;
    }
    for item in tree(PERMS)?.iter() {
        let (key, level) = item?;
        let split = key
            .iter()
            .position(|b| *b == SEP)
            .ok_or_else(|| StoreError::corrupt("permission"))?;
        emit(StoredRecord::Permission {
            doc: utf8(&key[..split], "permission")?,
            user: User::from_id(&utf8(&key[split + 1..], "permission")?)
                .ok_or_else(|| StoreError::corrupt("permission"))?,
            level: Level::parse(&utf8(&level, "permission")?)
                .map_err(|_| StoreError::corrupt("permission"))?,
        })?;
    }
    for item in tree(INVITES)?.iter() {
        let (key, bytes) = item?;
        emit(StoredRecord::Invite(read_invite_in(invites, &key, &bytes)?))?;
    }
    for item in tree(KEYS)?.iter() {
        emit(StoredRecord::Key(decode(&item?.1, "API key")?))?;
    }
    for item in tree(IDENTITIES)?.iter() {
        let (identity_key, bytes) = item?;
        let identity: IdentityRecord<serde::de::IgnoredAny> = decode(&bytes, "identity")?;
        emit(StoredRecord::Identity {
            identity_key: utf8(&identity_key, "identity")?,
            account: identity.account,
            record: Encoded(bytes.to_vec()),
        })?;
    }
    for item in tree(INVITE_KEYS)?.iter() {
        let (account, invite_key) = item?;
        emit(StoredRecord::InviteKey {
            account: utf8(&account, "invite key")?,
            invite_key: utf8(&invite_key, "invite key")?,
        })?;
    }
    for item in tree(REVOCATIONS)?.iter() {
        let (identity_key, at) = item?;
        emit(StoredRecord::Revocation {
            identity_key: utf8(&identity_key, "revocation")?,
            at: i64_from(&at).ok_or_else(|| StoreError::corrupt("revocation"))?,
        })?;
    }
    Ok(())
}

/// Most records written per transaction.
const BATCH: usize = 1000;

impl Store {
    /// Hands every record to `emit`: by kind, then in storage key order.
    pub fn each_record(
        &self,
        emit: impl FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        each_record_in(&self.trees.db, InviteLayout::BytesUnderDoc, emit)
    }

    /// True when nothing but the layout mark is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let db = &self.trees.db;
        for name in db.tree_names() {
            let tree = db.open_tree(&name)?;
            let empty = if name == DEFAULT_TREE {
                tree.iter().keys().all(|k| k.is_ok_and(|k| k == LAYOUT_KEY))
            } else {
                tree.is_empty()
            };
            if !empty {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes `records` into an empty store, rebuilding every index, and
    /// flushes. The store is marked "import in progress" (with `note`, what
    /// opening it adds to its refusal) until the last write is flushed, so
    /// a crash half way leaves a store the server refuses to start on.
    pub fn import(&self, records: &[StoredRecord], note: &[u8]) -> Result<(), CommitError> {
        if !self.is_empty()? {
            return Err(StoreError::Unusable(
                "the store is not empty; import only into a new data directory".into(),
            )
            .into());
        }
        let db = &self.trees.db;
        db.insert(IMPORT_MARK, note).map_err(StoreError::from)?;
        self.flush_now()?;
        let (server, directory) = changes_of(records);
        for batch in server.chunks(BATCH).chain(directory.chunks(BATCH)) {
            self.commit(batch)?;
        }
        self.flush_now()?;
        db.remove(IMPORT_MARK).map_err(StoreError::from)?;
        Ok(self.flush_now()?)
    }
}

/// The changes that store `records`, with the directory's account listings
/// and counts rebuilt from its identities: the server's, then the
/// directory's.
fn changes_of(records: &[StoredRecord]) -> (Vec<Change>, Vec<Change>) {
    let (mut server, mut directory) = (Vec::new(), Vec::new());
    let mut per_account: BTreeMap<String, u32> = BTreeMap::new();
    for record in records {
        match record.clone() {
            StoredRecord::User(user) => server.push(Change::CreateUser(user)),
            StoredRecord::Document { id, record } => {
                server.push(Change::CreateDocument { id, record })
            }
            StoredRecord::Permission { doc, user, level } => {
                server.push(Change::SetPermission { doc, user, level })
            }
            StoredRecord::Invite(invite) => server.push(Change::PutInvite(invite)),
            StoredRecord::Key(key) => server.push(Change::PutKey(key)),
            StoredRecord::Identity {
                identity_key,
                account,
                record,
            } => {
                *per_account.entry(account.clone()).or_default() += 1;
                directory.push(Change::AddAccountKey {
                    account,
                    identity_key: identity_key.clone(),
                });
                directory.push(Change::PutIdentity {
                    identity_key,
                    record,
                });
            }
            StoredRecord::InviteKey {
                account,
                invite_key,
            } => directory.push(Change::PutInviteKey {
                account,
                invite_key,
            }),
            StoredRecord::Revocation { identity_key, at } => {
                directory.push(Change::PutRevocation { identity_key, at })
            }
        }
    }
    for (account, count) in per_account {
        directory.push(Change::SetAccountKeyCount { account, count });
    }
    (server, directory)
}
