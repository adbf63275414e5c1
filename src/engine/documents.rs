//! Documents and their permission entries: creation, deletion, the
//! effective-permission rule, the last-admin rule, and the cascade that drops
//! a demoted admin's invites and API keys in the same transaction.

use super::{now_ms, random_bytes, Caller, Engine, Error, Level, Result, Task, User};
use crate::store::{Change, DocRecord, KeysOf};
use serde::Serialize;

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

/// Sets (or, for `Level::None`, removes) `user`'s explicit entry on `doc`.
fn set_entry(doc: &str, user: &User, level: Level) -> Change {
    Change::SetPermission {
        doc: doc.to_string(),
        user: user.clone(),
        level,
    }
}

impl Engine {
    pub fn document_exists(&self, doc: &str) -> Result<bool> {
        Ok(self.store().document_exists(doc)?)
    }

    /// The explicit entry of `user`, or the anonymous entry, or none.
    pub fn effective_level(&self, doc: &str, user: Option<&User>) -> Result<Level> {
        let store = self.store();
        if let Some(user) = user {
            if let Some(level) = store.permission(doc, user)? {
                return Ok(level);
            }
        }
        Ok(store
            .permission(doc, &User::anonymous())?
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
        self.lock_doc(&id).await.commit(&[
            Change::CreateDocument {
                id: id.clone(),
                record,
            },
            set_entry(&id, &user, Level::Admin),
        ])?;
        self.durable().await?;
        tracing::info!(doc = %id, user = %user.id(), "document created");
        Ok(id)
    }

    /// Deletes a document with its permissions, invites and API keys.
    pub async fn delete_document(&self, caller: &Caller, doc: &str) -> Result<()> {
        {
            let (guard, _) = self
                .lock_as_admin(caller, doc, Task::DeleteDocument)
                .await?;
            let mut changes = vec![Change::DropDocument(doc.to_string())];
            for (user, _) in self.store().permissions_on(doc)? {
                changes.push(set_entry(doc, &user, Level::None));
            }
            changes.extend(self.leftovers(doc, None)?.changes);
            guard.commit(&changes)?;
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
        Ok(self
            .store()
            .documents_of(user)?
            .into_iter()
            .map(|(id, level)| DocSummary {
                id,
                permissions: level.as_str().to_string(),
            })
            .collect())
    }

    /// Admins get every entry; others get their own effective entry.
    pub fn get_permissions(&self, caller: &Caller, doc: &str) -> Result<Vec<Entry>> {
        let level = self.caller_level(caller, doc)?;
        if !level.is_admin() {
            let me = caller.user().cloned().unwrap_or_else(User::anonymous);
            return Ok(vec![Entry::new(&me, level)]);
        }
        Ok(self
            .store()
            .permissions_on(doc)?
            .iter()
            .map(|(user, level)| Entry::new(user, *level))
            .collect())
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
            let (guard, _) = self.lock_as_admin(caller, doc, Task::Permissions).await?;
            let was_admin = self
                .store()
                .permission(doc, target)?
                .is_some_and(Level::is_admin);
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
            let mut changes = vec![set_entry(doc, target, level)];
            changes.extend(victims.changes);
            guard.commit(&changes)?;
            self.invite_counts().give_back(doc, victims.invites);
            if demoted {
                tracing::info!(doc = %doc, user = %target.id(), invites = victims.invites,
                    keys = victims.keys, "admin demoted; invites and keys dropped");
            }
        }
        self.durable().await?;
        self.refresh_user(doc, target);
        Ok(Entry::new(target, level))
    }

    pub(super) fn explicit_admins(&self, doc: &str) -> Result<Vec<User>> {
        Ok(self
            .store()
            .permissions_on(doc)?
            .into_iter()
            .filter(|(_, level)| level.is_admin())
            .map(|(user, _)| user)
            .collect())
    }

    /// What `admin` leaves behind on a document when demoted (their
    /// invites and API keys), or with `None` everything a deleted document
    /// leaves.
    pub(super) fn leftovers(&self, doc: &str, admin: Option<&User>) -> Result<Leftovers> {
        let mut leftovers = Leftovers::default();
        for invite in self.store().invites_on(doc) {
            let invite = invite?;
            if admin.is_none_or(|a| &invite.created_by == a) {
                leftovers.invites += 1;
                leftovers
                    .changes
                    .push(Change::DropInvite(invite.reference()));
            }
        }
        let keys = match admin {
            Some(admin) => KeysOf::DocumentOwner(doc, admin),
            None => KeysOf::Document(doc),
        };
        for key in self.store().keys_of(keys)? {
            leftovers.keys += 1;
            leftovers.changes.push(Change::DropKey(key));
        }
        Ok(leftovers)
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

/// The changes that drop what a demoted admin or a deleted document
/// leaves behind, and how many invites and API keys they drop.
#[derive(Default)]
pub(super) struct Leftovers {
    pub(super) changes: Vec<Change>,
    pub(super) invites: usize,
    pub(super) keys: usize,
}
