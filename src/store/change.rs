//! Atomic multi-record changes as data: the engine and the directory hand
//! the store a list of [`Change`]s, and the store applies the whole list in
//! one transaction or not at all. A list that names checked changes
//! (`Create…`, `Replace…`) is refused as a whole when a check fails.
//!
//! This is the part a second backend implements again: each variant is one
//! or two row writes, and a list is one database transaction.

use super::schema::*;
use super::trees::Trees;
use super::{CommitError, Refusal, StoreError};
use crate::model::{Level, User};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

/// One change to stored records, in the product's terms.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new document; refused ([`Refusal::DocumentExists`]) if the id is taken.
    CreateDocument {
        id: String,
        record: DocRecord,
    },
    /// A document's own record (its entries, invites and keys are dropped
    /// by their own changes in the same list).
    DropDocument(String),
    /// Sets `user`'s explicit entry on `doc`; [`Level::None`] removes it.
    SetPermission {
        doc: String,
        user: User,
        level: Level,
    },
    /// A new invite with its expiry entry.
    PutInvite(InviteRecord),
    /// An invite's record only (an acceptance: its expiry is unchanged).
    UpdateInvite(InviteRecord),
    /// An invite and its expiry entry; dropping one already gone is a no-op.
    DropInvite(InviteRef),
    /// An API key with its listing entry.
    PutKey(KeyRecord),
    /// An API key and its listing entry.
    DropKey(KeyRecord),
    /// A new account; refused ([`Refusal::UserExists`]) if taken.
    CreateUser(UserRecord),
    /// An account's new record; refused ([`Refusal::NoSuchUser`]) if it
    /// was deleted meanwhile (so that it is not brought back).
    ReplaceUser(UserRecord),
    DropUser(User),
    /// A session with its expiry entry.
    PutSession {
        id: SessionId,
        record: SessionRecord,
    },
    /// A session and its expiry entry.
    DropSession {
        id: SessionId,
        expires_at: i64,
    },
    /// The key directory: an identity key's record.
    PutIdentity {
        identity_key: String,
        record: Encoded,
    },
    DropIdentity {
        identity_key: String,
    },
    /// An identity key listed under its account.
    AddAccountKey {
        account: String,
        identity_key: String,
    },
    DropAccountKey {
        account: String,
        identity_key: String,
    },
    /// How many identity keys an account holds; zero removes the count.
    SetAccountKeyCount {
        account: String,
        count: u32,
    },
    PutInviteKey {
        account: String,
        invite_key: String,
    },
    DropInviteKey {
        account: String,
    },
    /// When an identity key was last revoked.
    PutRevocation {
        identity_key: String,
        at: i64,
    },
}

/// What a committed list did beyond what it said.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Invites among the list's `DropInvite`s that were still stored.
    pub invites_dropped: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    Server,
    Directory,
}

impl Change {
    fn scope(&self) -> Scope {
        match self {
            Change::PutIdentity { .. }
            | Change::DropIdentity { .. }
            | Change::AddAccountKey { .. }
            | Change::DropAccountKey { .. }
            | Change::SetAccountKeyCount { .. }
            | Change::PutInviteKey { .. }
            | Change::DropInviteKey { .. }
            | Change::PutRevocation { .. } => Scope::Directory,
            _ => Scope::Server,
        }
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<Refusal>>;

/// Applies `changes` in one transaction. It may run more than once on
/// conflicts; the changes are data, so a rerun writes the same.
pub(crate) fn apply(trees: &Trees, changes: &[Change]) -> Result<Committed, CommitError> {
    let scope = changes.first().map_or(Scope::Server, Change::scope);
    assert!(
        changes.iter().all(|c| c.scope() == scope),
        "a change list spans the server's and the directory's records"
    );
    let result = match scope {
        Scope::Server => trees.server().as_slice().transaction(|t| {
            let mut committed = Committed::default();
            for change in changes {
                apply_server(t, change, &mut committed)?;
            }
            Ok(committed)
        }),
        Scope::Directory => trees.directory().as_slice().transaction(|t| {
            for change in changes {
                apply_directory(t, change)?;
            }
            Ok(Committed::default())
        }),
    };
    match result {
        Ok(committed) => Ok(committed),
        Err(TransactionError::Abort(refusal)) => Err(CommitError::Refused(refusal)),
        Err(TransactionError::Storage(e)) => Err(StoreError::from(e).into()),
    }
}

fn refuse<T>(refusal: Refusal) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(refusal))
}

/// `t` is [`Trees::server`]'s order.
fn apply_server(t: &[TransactionalTree], change: &Change, done: &mut Committed) -> TxResult<()> {
    let [users, sessions, docs, perms, user_docs, invites, expiry, keys, key_index, session_expiry] =
        t
    else {
        unreachable!("the server scope has ten trees")
    };
    match change {
        Change::CreateDocument { id, record } => {
            if docs.get(id.as_bytes())?.is_some() {
                return refuse(Refusal::DocumentExists(id.clone()));
            }
            docs.insert(id.as_bytes(), encode(record))?;
        }
        Change::DropDocument(id) => {
            docs.remove(id.as_bytes())?;
        }
        Change::SetPermission { doc, user, level } => {
            let (pk, uk) = (perm_key(doc, user), user_doc_key(user, doc));
            if *level == Level::None {
                perms.remove(pk)?;
                user_docs.remove(uk)?;
            } else {
                perms.insert(pk, level.as_str())?;
                if !user.is_anonymous() {
                    user_docs.insert(uk, level.as_str())?;
                }
            }
        }
        Change::PutInvite(invite) => {
            invites.insert(invite_key(&invite.doc, &invite.key), encode(invite))?;
            expiry.insert(invite_expiry_key(&invite.reference()), &[])?;
        }
        Change::UpdateInvite(invite) => {
            invites.insert(invite_key(&invite.doc, &invite.key), encode(invite))?;
        }
        Change::DropInvite(invite) => {
            let existed = invites.remove(invite_key(&invite.doc, &invite.key))?;
            expiry.remove(invite_expiry_key(invite))?;
            done.invites_dropped += usize::from(existed.is_some());
        }
        Change::PutKey(record) => {
            keys.insert(record.id.as_bytes(), encode(record))?;
            key_index.insert(key_index_key(record), &[])?;
        }
        Change::DropKey(record) => {
            keys.remove(record.id.as_bytes())?;
            key_index.remove(key_index_key(record))?;
        }
        Change::CreateUser(record) => {
            let id = record.user().id();
            if users.get(id.as_bytes())?.is_some() {
                return refuse(Refusal::UserExists(record.user()));
            }
            users.insert(id.as_bytes(), encode(record))?;
        }
        Change::ReplaceUser(record) => {
            let id = record.user().id();
            if users.get(id.as_bytes())?.is_none() {
                return refuse(Refusal::NoSuchUser(record.user()));
            }
            users.insert(id.as_bytes(), encode(record))?;
        }
        Change::DropUser(user) => {
            users.remove(user.id().as_bytes())?;
        }
        Change::PutSession { id, record } => {
            sessions.insert(&id.0[..], encode(record))?;
            session_expiry.insert(&session_expiry_key(record.expires_at, id)[..], &[])?;
        }
        Change::DropSession { id, expires_at } => {
            sessions.remove(&id.0[..])?;
            session_expiry.remove(&session_expiry_key(*expires_at, id)[..])?;
        }
        _ => unreachable!("a directory change in the server scope"),
    }
    Ok(())
}

/// `t` is [`Trees::directory`]'s order.
fn apply_directory(t: &[TransactionalTree], change: &Change) -> TxResult<()> {
    let [identities, account_keys, account_counts, invite_keys, revocations] = t else {
        unreachable!("the directory scope has five trees")
    };
    match change {
        Change::PutIdentity {
            identity_key,
            record,
        } => {
            identities.insert(identity_key.as_bytes(), record.0.as_slice())?;
        }
        Change::DropIdentity { identity_key } => {
            identities.remove(identity_key.as_bytes())?;
        }
        Change::AddAccountKey {
            account,
            identity_key,
        } => {
            account_keys.insert(account_key(account, identity_key), &[])?;
        }
        Change::DropAccountKey {
            account,
            identity_key,
        } => {
            account_keys.remove(account_key(account, identity_key))?;
        }
        Change::SetAccountKeyCount { account, count: 0 } => {
            account_counts.remove(account.as_bytes())?;
        }
        Change::SetAccountKeyCount { account, count } => {
            account_counts.insert(account.as_bytes(), &count.to_be_bytes())?;
        }
        Change::PutInviteKey {
            account,
            invite_key,
        } => {
            invite_keys.insert(account.as_bytes(), invite_key.as_bytes())?;
        }
        Change::DropInviteKey { account } => {
            invite_keys.remove(account.as_bytes())?;
        }
        Change::PutRevocation { identity_key, at } => {
            revocations.insert(identity_key.as_bytes(), &at.to_be_bytes())?;
        }
        _ => unreachable!("a server change in the directory scope"),
    }
    Ok(())
}
