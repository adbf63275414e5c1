//! Documents and their permission entries: creation, deletion, the
//! effective-permission rule, the last-admin rule, and the cascade that drops
//! a demoted admin's invites and API keys in the same transaction.

use super::invites::tx_drop_invite;
use super::{now_ms, random_bytes, Caller, Engine, Error, Level, Result, Task, User};
use crate::store::{key, last_part, prefix, tx_put_json, Tx, TxResult};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError::Abort;

/// Paths that are routes, never documents.
pub const RESERVED: &[&str] = &[
    "new",
    "auth",
    "api",
    "v1",
    "static",
    "ws",
    "invite",
    "identity",
    "invites_api",
    "health",
    "ready",
    "metrics",
    "favicon.ico",
];

/// `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$` and not reserved.
pub fn validate_doc_id(id: &str) -> Result<()> {
    let bytes = id.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    if !valid {
        return Err(Error::bad(
            "document id must be 1 to 64 letters, digits, '_' or '-', starting with a letter or digit",
        ));
    }
    if RESERVED.contains(&id) {
        return Err(Error::bad(format!("document id {id:?} is reserved")));
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
pub(crate) struct DocRecord {
    pub(crate) created_at: i64,
    pub(crate) created_by: User,
}

/// One permission entry as listed by `getPermissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub username: String,
    pub provider: String,
    pub permissions: String,
}

impl Entry {
    fn new(user: &User, level: Level) -> Entry {
        Entry {
            username: user.username.clone(),
            provider: user.provider.clone(),
            permissions: level.as_str().to_string(),
        }
    }
}

/// A document the caller has an explicit entry on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocSummary {
    pub id: String,
    pub permissions: String,
}

fn perm_key(doc: &str, user: &User) -> Vec<u8> {
    key(&[doc.as_bytes(), user.id().as_bytes()])
}

fn user_doc_key(user: &User, doc: &str) -> Vec<u8> {
    key(&[user.id().as_bytes(), doc.as_bytes()])
}

pub(crate) fn user_from_id(id: &[u8]) -> Option<User> {
    let id = std::str::from_utf8(id).ok()?;
    let (username, provider) = id.split_once(':')?;
    Some(User {
        username: username.to_string(),
        provider: provider.to_string(),
    })
}

/// Writes (or, for `Level::None`, removes) an explicit entry and its index.
pub(crate) fn tx_set_entry<E>(tx: &Tx, doc: &str, user: &User, level: Level) -> TxResult<(), E> {
    let pk = perm_key(doc, user);
    let uk = user_doc_key(user, doc);
    if level == Level::None {
        tx.perms.remove(pk)?;
        tx.user_docs.remove(uk)?;
    } else {
        tx.perms.insert(pk, level.as_str())?;
        if !user.is_anonymous() {
            tx.user_docs.insert(uk, level.as_str())?;
        }
    }
    Ok(())
}

impl Engine {
    pub fn document_exists(&self, doc: &str) -> Result<bool> {
        Ok(self.store().docs.contains_key(doc)?)
    }

    /// The explicit entry of `user`, or the anonymous entry, or none.
    pub fn effective_level(&self, doc: &str, user: Option<&User>) -> Result<Level> {
        let perms = &self.store().perms;
        if let Some(user) = user {
            if let Some(v) = perms.get(perm_key(doc, user))? {
                return Ok(Level::from_stored(&v));
            }
        }
        Ok(perms
            .get(perm_key(doc, &User::anonymous()))?
            .map(|v| Level::from_stored(&v))
            .unwrap_or(Level::None))
    }

    /// The caller's level on an existing document (`no_such_document` else).
    pub fn caller_level(&self, caller: &Caller, doc: &str) -> Result<Level> {
        if !self.document_exists(doc)? {
            return Err(Error::NoSuchDocument(doc.to_string()));
        }
        self.effective_level(doc, caller.user())
    }

    /// Logged in, document exists, caller is admin; returns the caller.
    /// A refusal is worded for `task`.
    pub fn require_admin<'c>(&self, caller: &'c Caller, doc: &str, task: Task) -> Result<&'c User> {
        let user = caller.require_user(task)?;
        let level = self.caller_level(caller, doc)?;
        if !level.is_admin() {
            return Err(Error::NotAdmin {
                task,
                perms: level.as_str().to_string(),
                doc: doc.to_string(),
            });
        }
        Ok(user)
    }

    /// Creates a document with the caller as its only admin. Without an id,
    /// a random one is chosen.
    pub async fn create_document(&self, caller: &Caller, id: Option<&str>) -> Result<String> {
        let user = caller.require_user(Task::CreateDocument)?.clone();
        let id = match id {
            Some(id) => {
                validate_doc_id(id)?;
                id.to_string()
            }
            None => hex::encode(random_bytes::<6>()),
        };
        let record = DocRecord {
            created_at: now_ms(),
            created_by: user.clone(),
        };
        {
            let _guard = self.lock_doc(&id).await;
            self.store().write(|tx| {
                if tx.docs.get(id.as_bytes())?.is_some() {
                    return Err(Abort(Error::Conflict(format!(
                        "Document {id} already exists"
                    ))));
                }
                tx_put_json(tx.docs, id.as_bytes(), &record)?;
                tx_set_entry(tx, &id, &user, Level::Admin)
            })?;
        }
        self.durable().await?;
        tracing::info!(doc = %id, user = %user.id(), "document created");
        Ok(id)
    }

    /// Deletes a document with its permissions, invites and API keys.
    pub async fn delete_document(&self, caller: &Caller, doc: &str) -> Result<()> {
        {
            let _guard = self
                .lock_as_admin(caller, doc, Task::DeleteDocument)
                .await?;
            let store = self.store();
            let entries = scan_keys(&store.perms, &prefix(&[doc.as_bytes()]))?;
            let leftovers = self.leftovers(doc, None)?;
            store.write(|tx| {
                tx.docs.remove(doc.as_bytes())?;
                for k in &entries {
                    if let Some(user) = user_from_id(last_part(k)) {
                        tx_set_entry::<Error>(tx, doc, &user, Level::None)?;
                    }
                }
                leftovers.delete::<Error>(tx)
            })?;
            self.invite_counts().forget(doc);
        }
        self.durable().await?;
        self.events().document_deleted(doc);
        tracing::info!(doc = %doc, "document deleted");
        Ok(())
    }

    /// Documents where `caller` has an explicit entry.
    pub fn my_documents(&self, caller: &Caller) -> Result<Vec<DocSummary>> {
        let user = caller
            .user()
            .ok_or_else(|| Error::Unauthorized("Must be logged in".into()))?;
        let mut out = Vec::new();
        for item in self
            .store()
            .user_docs
            .scan_prefix(prefix(&[user.id().as_bytes()]))
        {
            let (k, v) = item.map_err(crate::store::StoreError::from)?;
            out.push(DocSummary {
                id: String::from_utf8_lossy(last_part(&k)).into_owned(),
                permissions: Level::from_stored(&v).as_str().to_string(),
            });
        }
        Ok(out)
    }

    /// Admins get every entry; others get their own effective entry.
    pub fn get_permissions(&self, caller: &Caller, doc: &str) -> Result<Vec<Entry>> {
        let level = self.caller_level(caller, doc)?;
        if !level.is_admin() {
            let me = caller.user().cloned().unwrap_or_else(User::anonymous);
            return Ok(vec![Entry::new(&me, level)]);
        }
        let mut out = Vec::new();
        for item in self.store().perms.scan_prefix(prefix(&[doc.as_bytes()])) {
            let (k, v) = item.map_err(crate::store::StoreError::from)?;
            if let Some(user) = user_from_id(last_part(&k)) {
                out.push(Entry::new(&user, Level::from_stored(&v)));
            }
        }
        Ok(out)
    }

    /// Sets (or with `Level::None` removes) `target`'s explicit entry.
    /// Demoting an admin drops their invites and API keys atomically.
    pub async fn set_permissions(
        &self,
        caller: &Caller,
        doc: &str,
        target: &User,
        level: Level,
    ) -> Result<Entry> {
        // Before judging the target: non-admins learn nothing about users.
        self.require_admin(caller, doc, Task::Permissions)?;
        if target.is_anonymous() {
            if level.is_admin() {
                return Err(Error::bad("the anonymous entry can never hold \"a\""));
            }
        } else {
            if target.username == "anonymous" {
                return Err(Error::bad("the anonymous entry has provider \"\""));
            }
            if !self.user_exists(target)? {
                return Err(Error::bad(format!("no such user {}", target.id())));
            }
        }
        {
            let _guard = self.lock_as_admin(caller, doc, Task::Permissions).await?;
            let store = self.store();
            let was_admin = store
                .perms
                .get(perm_key(doc, target))?
                .is_some_and(|v| Level::from_stored(&v).is_admin());
            let demoted = was_admin && !level.is_admin();
            if demoted {
                let admins = self.explicit_admins(doc)?;
                if admins.iter().all(|a| a == target) {
                    return Err(Error::LastAdmin);
                }
            }
            let victims = if demoted {
                self.leftovers(doc, Some(target))?
            } else {
                Leftovers::default()
            };
            store.write(|tx| {
                tx_set_entry::<Error>(tx, doc, target, level)?;
                victims.delete::<Error>(tx)
            })?;
            self.invite_counts().give_back(doc, victims.invites.len());
            if demoted {
                tracing::info!(doc = %doc, user = %target.id(), invites = victims.invites.len(),
                    keys = victims.keys.len(), "admin demoted; invites and keys dropped");
            }
        }
        self.durable().await?;
        self.refresh_user(doc, target);
        Ok(Entry::new(target, level))
    }

    pub(super) fn explicit_admins(&self, doc: &str) -> Result<Vec<User>> {
        let mut out = Vec::new();
        for item in self.store().perms.scan_prefix(prefix(&[doc.as_bytes()])) {
            let (k, v) = item.map_err(crate::store::StoreError::from)?;
            if Level::from_stored(&v).is_admin() {
                out.extend(user_from_id(last_part(&k)));
            }
        }
        Ok(out)
    }

    /// What `admin` leaves behind on a document when demoted (their
    /// invites and API keys), or with `None` everything a deleted document
    /// leaves.
    pub(super) fn leftovers(&self, doc: &str, admin: Option<&User>) -> Result<Leftovers> {
        let keys_prefix = match admin {
            Some(admin) => prefix(&[doc.as_bytes(), admin.id().as_bytes()]),
            None => prefix(&[doc.as_bytes()]),
        };
        let invites = self
            .stored_invites(doc)?
            .into_iter()
            .filter(|invite| admin.is_none_or(|a| &invite.created_by == a))
            .map(|invite| invite.storage_keys())
            .collect();
        Ok(Leftovers {
            invites,
            keys: scan_keys(&self.store().key_index, &keys_prefix)?,
        })
    }

    /// Tells the sockets of `user` on `doc` their new permission; a change
    /// of the anonymous entry can concern every socket.
    pub(crate) fn refresh_user(&self, doc: &str, user: &User) {
        let only = (!user.is_anonymous()).then_some(user);
        self.events().permissions_changed(doc, only, &|u| {
            self.effective_level(doc, u).unwrap_or(Level::None)
        });
    }
}

/// Stored invites (record and expiry keys) and API key index entries to
/// delete with a demotion or with their document.
#[derive(Default)]
pub(super) struct Leftovers {
    pub(super) invites: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) keys: Vec<Vec<u8>>,
}

impl Leftovers {
    pub(super) fn delete<E: From<crate::store::StoreError>>(&self, tx: &Tx) -> TxResult<(), E> {
        for (record, expiry) in &self.invites {
            tx_drop_invite(tx, record, expiry)?;
        }
        for k in &self.keys {
            tx.keys.remove(last_part(k))?;
            tx.key_index.remove(k.as_slice())?;
        }
        Ok(())
    }
}

/// Every key under `prefix` in a plain tree.
pub(crate) fn scan_keys(tree: &sled::Tree, p: &[u8]) -> Result<Vec<Vec<u8>>> {
    tree.scan_prefix(p)
        .keys()
        .map(|k| {
            k.map(|k| k.to_vec())
                .map_err(|e| crate::store::StoreError::from(e).into())
        })
        .collect()
}
