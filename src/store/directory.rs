//! The key directory's reads. Its writes are [`super::Change`]s committed
//! under [`Store::lock_directory`], so "is this key the account's?" and
//! "how many keys has the account?" still hold when the change is applied.

use super::schema::*;
use super::{Store, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

impl Store {
    /// The record of identity key `identity_key`.
    pub fn identity<C: serde::de::DeserializeOwned>(
        &self,
        identity_key: &str,
    ) -> Result<Option<IdentityRecord<C>>> {
        self.get(&self.trees.identities, identity_key.as_bytes(), "identity")
    }

    /// Whether `identity_key` is registered to `account`.
    pub fn account_has_key(&self, account: &str, identity_key: &str) -> Result<bool> {
        Ok(self
            .trees
            .account_keys
            .contains_key(account_key(account, identity_key))?)
    }

    /// How many identity keys `account` holds.
    pub fn account_key_count(&self, account: &str) -> Result<u32> {
        Ok(self
            .trees
            .account_counts
            .get(account.as_bytes())?
            .map_or(0, |v| u32_from(&v)))
    }

    /// When `identity_key` was last revoked; an unreadable entry counts as
    /// revoked forever.
    pub fn revoked_at(&self, identity_key: &str) -> Result<Option<i64>> {
        Ok(self
            .trees
            .revocations
            .get(identity_key.as_bytes())?
            .map(|v| i64_from(&v).unwrap_or(i64::MAX)))
    }

    /// The invite did:key that `account` published.
    pub fn invite_key_of(&self, account: &str) -> Result<Option<String>> {
        Ok(self
            .trees
            .invite_keys
            .get(account.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
