//! The key directory (`docs/directory.md`), compatible with the WalletConnect
//! Keys Server: wallets bind Ed25519 identity keys to their account with a
//! signed CACAO, and identity keys publish the account's X25519 invite key
//! with a did-JWT. Verification and storage live here; `http/directory.rs`
//! only turns requests into these calls and results into the envelope.
//!
//! Storage goes through the store's typed API (the records are laid out in
//! `crate::store::schema`): an identity, its account's listing and count,
//! and the account's invite key change together in one commit, under the
//! directory's write lock, so they never disagree and "is this the last
//! key?" and the per-account cap hold when the change is applied. When an
//! identity key is revoked is kept too, so an old CACAO cannot bring the
//! key back.

pub mod cacao;
pub mod did;
mod error;
pub mod jwt;
mod recap;
pub mod siwe;

pub use error::DirError;

use crate::store::{Change, DirectoryLock, Encoded, IdentityRecord, Store, StoreError};
use cacao::Cacao;
use did::Account;
use jwt::Action;
use serde_json::{json, Value};

/// Most identity keys one account may hold.
pub const MAX_KEYS_PER_ACCOUNT: u32 = 100;

pub struct Directory {
    store: Store,
    /// The server's public URL without a trailing `/`: the required `aud`.
    audience: String,
}

impl Directory {
    pub fn new(store: &Store, public_url: &str) -> Directory {
        Directory {
            store: store.clone(),
            audience: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// `POST /identity`: binds the CACAO's identity key to its account.
    /// Registering the same key for the same account again is a no-op
    /// success (the newer CACAO is kept); for another account it is 409, as
    /// is a CACAO issued before the key's last revocation or a new key for
    /// an account already at [`MAX_KEYS_PER_ACCOUNT`].
    pub async fn register_identity(&self, cacao: Cacao, now_ms: i64) -> Result<Value, DirError> {
        let binding = cacao::verify(&cacao, now_ms)?;
        let account = binding.account.canonical();
        let identity = binding.identity_key.as_str();
        let record = Encoded::of(&IdentityRecord {
            account: account.clone(),
            cacao,
        });
        let store = &self.store;
        let lock = store.lock_directory().await;
        let revoked_at = store.revoked_at(identity)?;
        if revoked_at.is_some_and(|at| binding.issued_at_ms <= at) {
            return Err(DirError::revoked());
        }
        let put = Change::PutIdentity {
            identity_key: identity.to_string(),
            record,
        };
        if let Some(existing) = self.identity(identity)? {
            if existing.account != account {
                return Err(DirError::conflict());
            }
            return self.commit(lock, &[put]).await;
        }
        let count = store.account_key_count(&account)?;
        if count >= MAX_KEYS_PER_ACCOUNT {
            return Err(DirError::too_many_keys());
        }
        let changes = [
            put,
            Change::AddAccountKey {
                account: account.clone(),
                identity_key: identity.to_string(),
            },
            Change::SetAccountKeyCount {
                account,
                count: count + 1,
            },
        ];
        self.commit(lock, &changes).await
    }

    /// `GET /identity?publicKey=…`: the CACAO that registered the key. The
    /// key may be given as the Keys Server does (`z6Mk…`) or as a did:key.
    pub fn resolve_identity(&self, public_key: &str) -> Result<Value, DirError> {
        let record = self
            .identity(&as_did_key(public_key))?
            .ok_or_else(|| DirError::identity_not_found(public_key))?;
        Ok(json!({ "cacao": record.cacao }))
    }

    /// `DELETE /identity`: removes the signing identity key and remembers
    /// when; removing an account's last identity key also removes its
    /// invite key.
    pub async fn unregister_identity(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::UnregisterIdentity, &self.audience, now_ms)?;
        let account = token.account.canonical();
        let identity = token.identity_key.as_str();
        let lock = self.authorised(&account, identity).await?;
        let left = self.store.account_key_count(&account)?.saturating_sub(1);
        let mut changes = vec![
            Change::DropIdentity {
                identity_key: identity.to_string(),
            },
            Change::DropAccountKey {
                account: account.clone(),
                identity_key: identity.to_string(),
            },
            Change::PutRevocation {
                identity_key: identity.to_string(),
                at: now_ms,
            },
            Change::SetAccountKeyCount {
                account: account.clone(),
                count: left,
            },
        ];
        if left == 0 {
            changes.push(Change::DropInviteKey { account });
        }
        self.commit(lock, &changes).await
    }

    /// `POST /invite`: sets (or replaces) the account's invite key.
    pub async fn register_invite(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::RegisterInvite, &self.audience, now_ms)?;
        let account = token.account.canonical();
        let invite_key = token.invite_key.unwrap_or_default();
        let lock = self.authorised(&account, &token.identity_key).await?;
        let change = Change::PutInviteKey {
            account,
            invite_key,
        };
        self.commit(lock, &[change]).await
    }

    /// `GET /invite?account=…`: the account's invite key. Unknown accounts
    /// are reported with the identifier exactly as given.
    pub fn resolve_invite(&self, account: &str) -> Result<Value, DirError> {
        let canonical = Account::from_caip10(account)
            .map(|a| a.canonical())
            .unwrap_or_else(|_| account.to_string());
        let key = self
            .store
            .invite_key_of(&canonical)?
            .ok_or_else(|| DirError::invite_not_found(account))?;
        Ok(json!({ "inviteKey": key }))
    }

    /// `DELETE /invite`: removes the account's invite key (a success when
    /// there was none, as with the Keys Server).
    pub async fn unregister_invite(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::UnregisterInvite, &self.audience, now_ms)?;
        let account = token.account.canonical();
        let lock = self.authorised(&account, &token.identity_key).await?;
        self.commit(lock, &[Change::DropInviteKey { account }])
            .await
    }

    fn identity(&self, identity_key: &str) -> Result<Option<IdentityRecord<Cacao>>, DirError> {
        Ok(self.store.identity(identity_key)?)
    }

    /// Takes the directory's write lock once `identity_key` is found
    /// registered to `account`; 401 if it is not (a valid token from a key
    /// the account never registered, or no longer has).
    async fn authorised(
        &self,
        account: &str,
        identity_key: &str,
    ) -> Result<DirectoryLock<'_>, DirError> {
        let lock = self.store.lock_directory().await;
        if !self.store.account_has_key(account, identity_key)? {
            return Err(DirError::unauthorized());
        }
        Ok(lock)
    }

    /// Commits `changes` under the lock the checks were made with, then
    /// waits until they are on disk: callers reply only after this returns.
    async fn commit(&self, lock: DirectoryLock<'_>, changes: &[Change]) -> Result<Value, DirError> {
        lock.commit(changes).map_err(|e| match e {
            crate::store::CommitError::Store(e) => DirError::from(e),
            crate::store::CommitError::Refused(r) => DirError::from(StoreError::Unusable(format!(
                "directory change refused: {r:?}"
            ))),
        })?;
        drop(lock);
        self.store.durable().await?;
        Ok(Value::Null)
    }
}

/// `z6Mk…` → `did:key:z6Mk…`; a did:key stays as it is.
fn as_did_key(public_key: &str) -> String {
    if public_key.starts_with("did:key:") {
        public_key.to_string()
    } else {
        format!("did:key:{public_key}")
    }
}

/// The shared known-answer vectors, for unit tests.
#[cfg(test)]
pub(crate) fn test_vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/keys-directory.json"
    ))
    .expect("vectors file");
    serde_json::from_str(&text).unwrap()
}
