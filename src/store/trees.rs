//! The sled trees of a data directory, opened once. Two transaction scopes:
//! the invite and permission server's ten trees, and the key directory's
//! five. A change list never spans both (nothing in the product changes
//! records of both at once), and a transaction over fewer trees is cheaper
//! for the invite writes the benchmark measures.

use super::schema::*;
use super::StoreError;

#[derive(Clone)]
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    pub(crate) users: sled::Tree,
    pub(crate) sessions: sled::Tree,
    pub(crate) docs: sled::Tree,
    pub(crate) perms: sled::Tree,
    pub(crate) user_docs: sled::Tree,
    pub(crate) invites: sled::Tree,
    pub(crate) expiry: sled::Tree,
    pub(crate) keys: sled::Tree,
    pub(crate) key_index: sled::Tree,
    pub(crate) session_expiry: sled::Tree,
    pub(crate) identities: sled::Tree,
    pub(crate) account_keys: sled::Tree,
    pub(crate) account_counts: sled::Tree,
    pub(crate) invite_keys: sled::Tree,
    pub(crate) revocations: sled::Tree,
}

impl Trees {
    pub(crate) fn open(db: sled::Db) -> Result<Trees, StoreError> {
        let tree = |name: &str| db.open_tree(name);
        Ok(Trees {
            users: tree(USERS)?,
            sessions: tree(SESSIONS)?,
            docs: tree(DOCS)?,
            perms: tree(PERMS)?,
            user_docs: tree(USER_DOCS)?,
            invites: tree(INVITES)?,
            expiry: tree(EXPIRY)?,
            keys: tree(KEYS)?,
            key_index: tree(KEY_INDEX)?,
            session_expiry: tree(SESSION_EXPIRY)?,
            identities: tree(IDENTITIES)?,
            account_keys: tree(ACCOUNT_KEYS)?,
            account_counts: tree(ACCOUNT_COUNTS)?,
            invite_keys: tree(INVITE_KEYS)?,
            revocations: tree(REVOCATIONS)?,
            db,
        })
    }

    /// The server's trees in the order a transaction sees them (see
    /// [`super::change::Server`]).
    pub(crate) fn server(&self) -> [&sled::Tree; 10] {
        [
            &self.users,
            &self.sessions,
            &self.docs,
            &self.perms,
            &self.user_docs,
            &self.invites,
            &self.expiry,
            &self.keys,
            &self.key_index,
            &self.session_expiry,
        ]
    }

    /// The directory's trees in the order a transaction sees them (see
    /// [`super::change::Directory`]).
    pub(crate) fn directory(&self) -> [&sled::Tree; 5] {
        [
            &self.identities,
            &self.account_keys,
            &self.account_counts,
            &self.invite_keys,
            &self.revocations,
        ]
    }
}
