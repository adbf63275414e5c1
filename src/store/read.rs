//! Typed reads in the product's terms. Reads take no lock: the engine
//! holds a document's lock where a read must still hold when it writes.

use super::schema::*;
use super::{Store, StoreError};
use crate::model::{Level, User};

type Result<T> = std::result::Result<T, StoreError>;

/// Whose API keys to list.
#[derive(Debug, Clone, Copy)]
pub enum KeysOf<'a> {
    /// Every app key of a document.
    Document(&'a str),
    /// The app keys one admin owns on a document.
    DocumentOwner(&'a str, &'a User),
    /// A user's account keys.
    Account(&'a User),
}

/// How many records of each kind are stored, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub users: usize,
    pub sessions: usize,
    pub session_expiries: usize,
    pub documents: usize,
    pub permissions: usize,
    pub user_documents: usize,
    pub invites: usize,
    pub invite_expiries: usize,
    pub keys: usize,
    pub key_listings: usize,
}

impl Store {
    pub fn document_exists(&self, doc: &str) -> Result<bool> {
        Ok(self.trees.docs.contains_key(doc)?)
    }

    /// `user`'s explicit entry on `doc`, if any.
    pub fn permission(&self, doc: &str, user: &User) -> Result<Option<Level>> {
        Ok(self
            .trees
            .perms
            .get(perm_key(doc, user))?
            .map(|v| Level::from_stored(&v)))
    }

    /// Every explicit entry on `doc` (the anonymous one included).
    pub fn permissions_on(&self, doc: &str) -> Result<Vec<(User, Level)>> {
        let mut out = Vec::new();
        for item in self.trees.perms.scan_prefix(prefix(&[doc.as_bytes()])) {
            let (k, v) = item?;
            let user = std::str::from_utf8(last_part(&k))
                .ok()
                .and_then(User::from_id);
            out.extend(user.map(|u| (u, Level::from_stored(&v))));
        }
        Ok(out)
    }

    /// The documents where `user` has an explicit entry, with its level.
    pub fn documents_of(&self, user: &User) -> Result<Vec<(String, Level)>> {
        let mut out = Vec::new();
        for item in self
            .trees
            .user_docs
            .scan_prefix(prefix(&[user.id().as_bytes()]))
        {
            let (k, v) = item?;
            out.push((
                String::from_utf8_lossy(last_part(&k)).into_owned(),
                Level::from_stored(&v),
            ));
        }
        Ok(out)
    }

    /// The invite `key` of `doc`; none for a key that cannot exist.
    pub fn invite(&self, doc: &str, key: &str) -> Result<Option<InviteRecord>> {
        if !well_formed_invite_key(key) {
            return Ok(None);
        }
        let at = invite_key(doc, key);
        match self.trees.invites.get(&at)? {
            Some(bytes) => Ok(Some(read_invite(&at, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Every invite stored for `doc`, valid or not, one at a time (a
    /// listing keeps a page of them, however many there are).
    pub fn invites_on(&self, doc: &str) -> impl Iterator<Item = Result<InviteRecord>> {
        self.trees
            .invites
            .scan_prefix(prefix(&[doc.as_bytes()]))
            .map(|item| {
                let (k, v) = item?;
                read_invite(&k, &v)
            })
    }

    /// How many invites `doc` has stored (nothing decoded).
    pub fn invite_count(&self, doc: &str) -> Result<usize> {
        let mut n = 0;
        for item in self
            .trees
            .invites
            .scan_prefix(prefix(&[doc.as_bytes()]))
            .keys()
        {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// The API key `id`.
    pub fn key(&self, id: &str) -> Result<Option<KeyRecord>> {
        self.get(&self.trees.keys, id.as_bytes(), "API key")
    }

    /// The API keys of a holder, in listing order (document, owner, id).
    pub fn keys_of(&self, holder: KeysOf<'_>) -> Result<Vec<KeyRecord>> {
        let start = match holder {
            KeysOf::Document(doc) => prefix(&[doc.as_bytes()]),
            KeysOf::DocumentOwner(doc, owner) => prefix(&[doc.as_bytes(), owner.id().as_bytes()]),
            KeysOf::Account(user) => prefix(&[b"", user.id().as_bytes()]),
        };
        let mut out = Vec::new();
        for k in self.trees.key_index.scan_prefix(start).keys() {
            out.extend(self.key(&utf8(last_part(&k?), "API key listing")?)?);
        }
        Ok(out)
    }

    /// Records a use of an API key: replaces `before` with `after` only if
    /// the stored record is still `before` (one compare-and-swap, no
    /// transaction), so a use never brings back a deleted key and a lost
    /// race just skips one timestamp. True when replaced.
    pub fn record_key_use(&self, before: &KeyRecord, after: &KeyRecord) -> Result<bool> {
        Ok(self
            .trees
            .keys
            .compare_and_swap(
                before.id.as_bytes(),
                Some(encode(before)),
                Some(encode(after)),
            )?
            .is_ok())
    }

    pub fn user(&self, user: &User) -> Result<Option<UserRecord>> {
        self.get(&self.trees.users, user.id().as_bytes(), "user")
    }

    pub fn user_exists(&self, user: &User) -> Result<bool> {
        Ok(self.trees.users.contains_key(user.id())?)
    }

    /// Every account, in id order.
    pub fn users(&self) -> Result<Vec<UserRecord>> {
        self.trees
            .users
            .iter()
            .values()
            .map(|v| decode(&v?, "user"))
            .collect()
    }

    pub fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>> {
        self.get(&self.trees.sessions, &id.0, "session")
    }

    /// `user`'s sessions. Sessions are keyed by token digest, so this scans
    /// them all: fine for the rare operator changes that need it.
    pub fn sessions_of(&self, user: &User) -> Result<Vec<(SessionId, SessionRecord)>> {
        let mut out = Vec::new();
        self.each_session(|id, record| {
            if &record.user == user {
                out.push((id, record));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Hands every stored session that decodes to `f`.
    pub(crate) fn each_session(
        &self,
        mut f: impl FnMut(SessionId, SessionRecord) -> Result<()>,
    ) -> Result<()> {
        for item in self.trees.sessions.iter() {
            let (k, v) = item?;
            let (Ok(id), Ok(record)) = (
                <[u8; 32]>::try_from(&k[..]),
                decode::<SessionRecord>(&v, "session"),
            ) else {
                continue;
            };
            f(SessionId(id), record)?;
        }
        Ok(())
    }

    /// Counts every kind of record.
    pub fn census(&self) -> Census {
        let t = &self.trees;
        Census {
            users: t.users.len(),
            sessions: t.sessions.len(),
            session_expiries: t.session_expiry.len(),
            documents: t.docs.len(),
            permissions: t.perms.len(),
            user_documents: t.user_docs.len(),
            invites: t.invites.len(),
            invite_expiries: t.expiry.len(),
            keys: t.keys.len(),
            key_listings: t.key_index.len(),
        }
    }

    pub(crate) fn get<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        k: &[u8],
        what: &'static str,
    ) -> Result<Option<T>> {
        match tree.get(k)? {
            Some(bytes) => decode(&bytes, what).map(Some),
            None => Ok(None),
        }
    }
}
