//! The key directory (`docs/directory.md`), compatible with the WalletConnect
//! Keys Server: wallets bind Ed25519 identity keys to their account with a
//! signed CACAO, and identity keys publish the account's X25519 invite key
//! with a did-JWT. Verification and storage live here; `http/directory.rs`
//! only turns requests into these calls and results into the envelope.
//!
//! Storage is sled trees of its own, changed together in one transaction so
//! an identity, its account's index and count, and the account's invite key
//! never disagree:
//! - `dir_identities`: identity did:key → `{account, cacao}`
//! - `dir_account_keys`: `account \0 identity did:key` → empty, one record
//!   per key, so adding a key writes one small record, not the whole list
//! - `dir_account_counts`: account → its number of keys (u32, big endian):
//!   sled transactions cannot scan, and "is this the last key?" and the
//!   per-account cap must be answered inside one
//! - `dir_invites`: account → invite did:key
//! - `dir_revocations`: identity did:key → when it was last revoked (ms,
//!   i64 big endian), so an old CACAO cannot bring the key back
//!
//! Stores written before `dir_account_keys` kept one JSON list per account
//! in `dir_accounts`; opening such a store moves the lists to the new trees
//! in one transaction (see [`Directory::migrate_account_lists`]).

pub mod cacao;
pub mod did;
mod error;
pub mod jwt;
mod recap;
pub mod siwe;

pub use error::DirError;

use crate::store::{key, Store, StoreError};
use cacao::Cacao;
use did::Account;
use jwt::Action;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

/// The directory's tree names (export and import read and write them too).
pub(crate) const IDENTITIES: &str = "dir_identities";
pub(crate) const ACCOUNT_KEYS: &str = "dir_account_keys";
pub(crate) const ACCOUNT_COUNTS: &str = "dir_account_counts";
pub(crate) const INVITE_KEYS: &str = "dir_invites";
pub(crate) const REVOCATIONS: &str = "dir_revocations";

/// Most identity keys one account may hold.
pub const MAX_KEYS_PER_ACCOUNT: u32 = 100;

/// What `dir_identities` holds for one identity key.
#[derive(Serialize, Deserialize)]
pub(crate) struct IdentityRecord {
    pub(crate) account: String,
    pub(crate) cacao: Cacao,
}

pub struct Directory {
    store: Store,
    identities: sled::Tree,
    account_keys: sled::Tree,
    account_counts: sled::Tree,
    invites: sled::Tree,
    revocations: sled::Tree,
    /// The server's public URL without a trailing `/`: the required `aud`.
    audience: String,
}

/// The transactional views handed to [`Directory::write`] closures.
struct Trees<'a> {
    identities: &'a TransactionalTree,
    account_keys: &'a TransactionalTree,
    account_counts: &'a TransactionalTree,
    invites: &'a TransactionalTree,
    revocations: &'a TransactionalTree,
}

type TxResult<T> = Result<T, ConflictableTransactionError<DirError>>;

impl Directory {
    pub fn new(store: &Store, public_url: &str) -> Result<Directory, StoreError> {
        let tree = |name: &str| store.db.open_tree(name);
        let directory = Directory {
            store: store.clone(),
            identities: tree(IDENTITIES)?,
            account_keys: tree(ACCOUNT_KEYS)?,
            account_counts: tree(ACCOUNT_COUNTS)?,
            invites: tree(INVITE_KEYS)?,
            revocations: tree(REVOCATIONS)?,
            audience: public_url.trim_end_matches('/').to_string(),
        };
        directory.migrate_account_lists()?;
        Ok(directory)
    }

    /// Moves the per-account JSON lists of older stores (`dir_accounts`)
    /// into `dir_account_keys` and `dir_account_counts`, all in one
    /// transaction and flushed before the server starts: a crash leaves
    /// either the old layout or the new one. Accounts over the cap keep
    /// their keys (they just cannot add more).
    fn migrate_account_lists(&self) -> Result<(), StoreError> {
        let legacy = self.store.db.open_tree("dir_accounts")?;
        if legacy.is_empty() {
            return Ok(());
        }
        let mut lists = Vec::new();
        for entry in legacy.iter() {
            let (account, list) = entry?;
            let keys: Vec<String> = serde_json::from_slice(&list)
                .map_err(|e| StoreError(format!("corrupt dir_accounts record: {e}")))?;
            lists.push((account, keys));
        }
        let result = (&legacy, &self.account_keys, &self.account_counts).transaction(
            |(legacy, account_keys, counts)| {
                for (account, keys) in &lists {
                    for identity in keys {
                        account_keys.insert(index_key(account, identity), &[])?;
                    }
                    counts.insert(account, &count_bytes(keys.len() as u32))?;
                    legacy.remove(account)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            },
        );
        result.map_err(|e| StoreError(format!("migrating directory accounts: {e:?}")))?;
        self.store.flush_now()?;
        tracing::info!(
            accounts = lists.len(),
            "key directory accounts migrated to one record per key"
        );
        Ok(())
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
        let record = to_json(&IdentityRecord {
            account: account.clone(),
            cacao,
        })?;
        self.write(|t| {
            let revoked_at = t.revocations.get(identity.as_bytes())?;
            if revoked_at.is_some_and(|at| binding.issued_at_ms <= i64_from(&at)) {
                return abort(DirError::revoked());
            }
            if let Some(existing) = read_identity(t, identity)? {
                if existing.account != account {
                    return abort(DirError::conflict());
                }
                t.identities
                    .insert(identity.as_bytes(), record.as_slice())?;
                return Ok(());
            }
            let count = read_count(t, &account)?;
            if count >= MAX_KEYS_PER_ACCOUNT {
                return abort(DirError::too_many_keys());
            }
            t.identities
                .insert(identity.as_bytes(), record.as_slice())?;
            t.account_keys
                .insert(index_key(account.as_bytes(), identity), &[])?;
            t.account_counts
                .insert(account.as_bytes(), &count_bytes(count + 1))?;
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    /// `GET /identity?publicKey=…`: the CACAO that registered the key. The
    /// key may be given as the Keys Server does (`z6Mk…`) or as a did:key.
    pub fn resolve_identity(&self, public_key: &str) -> Result<Value, DirError> {
        let did = as_did_key(public_key);
        let record = self
            .identities
            .get(did.as_bytes())
            .map_err(StoreError::from)?
            .ok_or_else(|| DirError::identity_not_found(public_key))?;
        let record: IdentityRecord = from_json(&record)?;
        Ok(json!({ "cacao": record.cacao }))
    }

    /// `DELETE /identity`: removes the signing identity key and remembers
    /// when; removing an account's last identity key also removes its
    /// invite key.
    pub async fn unregister_identity(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::UnregisterIdentity, &self.audience, now_ms)?;
        let account = token.account.canonical();
        let identity = token.identity_key.as_str();
        self.write(|t| {
            authorise(t, &account, identity)?;
            t.identities.remove(identity.as_bytes())?;
            t.account_keys
                .remove(index_key(account.as_bytes(), identity))?;
            t.revocations
                .insert(identity.as_bytes(), &now_ms.to_be_bytes())?;
            let left = read_count(t, &account)?.saturating_sub(1);
            if left == 0 {
                t.account_counts.remove(account.as_bytes())?;
                t.invites.remove(account.as_bytes())?;
            } else {
                t.account_counts
                    .insert(account.as_bytes(), &count_bytes(left))?;
            }
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    /// `POST /invite`: sets (or replaces) the account's invite key.
    pub async fn register_invite(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::RegisterInvite, &self.audience, now_ms)?;
        let account = token.account.canonical();
        let invite_key = token.invite_key.unwrap_or_default();
        self.write(|t| {
            authorise(t, &account, &token.identity_key)?;
            t.invites
                .insert(account.as_bytes(), invite_key.as_bytes())?;
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    /// `GET /invite?account=…`: the account's invite key. Unknown accounts
    /// are reported with the identifier exactly as given.
    pub fn resolve_invite(&self, account: &str) -> Result<Value, DirError> {
        let canonical = Account::from_caip10(account)
            .map(|a| a.canonical())
            .unwrap_or_else(|_| account.to_string());
        let key = self
            .invites
            .get(canonical.as_bytes())
            .map_err(StoreError::from)?
            .ok_or_else(|| DirError::invite_not_found(account))?;
        Ok(json!({ "inviteKey": String::from_utf8_lossy(&key) }))
    }

    /// `DELETE /invite`: removes the account's invite key (a success when
    /// there was none, as with the Keys Server).
    pub async fn unregister_invite(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::UnregisterInvite, &self.audience, now_ms)?;
        let account = token.account.canonical();
        self.write(|t| {
            authorise(t, &account, &token.identity_key)?;
            t.invites.remove(account.as_bytes())?;
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    /// Runs `f` as one transaction over the directory's trees, then waits
    /// until it is on disk: callers reply only after this returns.
    async fn write(&self, f: impl Fn(&Trees) -> TxResult<()>) -> Result<(), DirError> {
        let result = (
            &self.identities,
            &self.account_keys,
            &self.account_counts,
            &self.invites,
            &self.revocations,
        )
            .transaction(
                |(identities, account_keys, account_counts, invites, revocations)| {
                    f(&Trees {
                        identities,
                        account_keys,
                        account_counts,
                        invites,
                        revocations,
                    })
                },
            );
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::from(e).into()),
        }
        Ok(self.store.durable().await?)
    }
}

/// 401 unless `identity_key` is registered to `account` (a valid token
/// from a key the account never registered, or no longer has).
fn authorise(t: &Trees, account: &str, identity_key: &str) -> TxResult<()> {
    match t
        .account_keys
        .get(index_key(account.as_bytes(), identity_key))?
    {
        Some(_) => Ok(()),
        None => abort(DirError::unauthorized()),
    }
}

/// `account \0 identity did:key`, the `dir_account_keys` key.
pub(crate) fn index_key(account: &[u8], identity_key: &str) -> Vec<u8> {
    key(&[account, identity_key.as_bytes()])
}

pub(crate) fn count_bytes(count: u32) -> [u8; 4] {
    count.to_be_bytes()
}

fn read_count(t: &Trees, account: &str) -> TxResult<u32> {
    Ok(t.account_counts
        .get(account.as_bytes())?
        .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
        .map_or(0, u32::from_be_bytes))
}

fn i64_from(bytes: &[u8]) -> i64 {
    <[u8; 8]>::try_from(bytes).map_or(i64::MAX, i64::from_be_bytes)
}

fn read_identity(t: &Trees, identity_key: &str) -> TxResult<Option<IdentityRecord>> {
    match t.identities.get(identity_key.as_bytes())? {
        Some(bytes) => from_json(&bytes).map(Some).map_err(abort_with),
        None => Ok(None),
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

fn abort<T>(e: DirError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn abort_with(e: DirError) -> ConflictableTransactionError<DirError> {
    ConflictableTransactionError::Abort(e)
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, DirError> {
    serde_json::to_vec(value).map_err(|e| StoreError(e.to_string()).into())
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DirError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError(format!("corrupt directory record: {e}")).into())
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
