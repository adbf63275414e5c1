//! The key directory (SPEC section 8), compatible with the WalletConnect
//! Keys Server: wallets bind Ed25519 identity keys to their account with a
//! signed CACAO, and identity keys publish the account's X25519 invite key
//! with a did-JWT. Verification and storage live here; `http/directory.rs`
//! only turns requests into these calls and results into the envelope.
//!
//! Storage is three sled trees of its own, changed together in one
//! transaction so an identity, its account index and the account's invite
//! key never disagree:
//! - `dir_identities`: identity did:key → `{account, cacao}`
//! - `dir_accounts`: canonical account → JSON list of its identity did:keys
//!   (a list rather than a prefix index because sled transactions cannot
//!   scan, and "was this the last key?" must be answered inside one)
//! - `dir_invites`: canonical account → invite did:key

pub mod cacao;
pub mod did;
mod error;
pub mod jwt;
mod recap;
pub mod siwe;

pub use error::DirError;

use crate::store::{Store, StoreError};
use cacao::Cacao;
use did::Account;
use jwt::Action;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

/// What `dir_identities` holds for one identity key.
#[derive(Serialize, Deserialize)]
struct IdentityRecord {
    account: String,
    cacao: Cacao,
}

pub struct Directory {
    store: Store,
    identities: sled::Tree,
    accounts: sled::Tree,
    invites: sled::Tree,
    /// The server's public URL without a trailing `/`: the required `aud`.
    audience: String,
}

/// The transactional views handed to [`Directory::write`] closures.
struct Trees<'a> {
    identities: &'a TransactionalTree,
    accounts: &'a TransactionalTree,
    invites: &'a TransactionalTree,
}

type TxResult<T> = Result<T, ConflictableTransactionError<DirError>>;

impl Directory {
    pub fn new(store: &Store, public_url: &str) -> Result<Directory, StoreError> {
        let tree = |name: &str| store.db.open_tree(name);
        Ok(Directory {
            store: store.clone(),
            identities: tree("dir_identities")?,
            accounts: tree("dir_accounts")?,
            invites: tree("dir_invites")?,
            audience: public_url.trim_end_matches('/').to_string(),
        })
    }

    /// `POST /identity`: binds the CACAO's identity key to its account.
    /// Registering the same key for the same account again is a no-op
    /// success (the newer CACAO is kept); for another account it is 409.
    pub async fn register_identity(&self, cacao: Cacao, now_ms: i64) -> Result<Value, DirError> {
        let binding = cacao::verify(&cacao, now_ms)?;
        let account = binding.account.canonical();
        let record = to_json(&IdentityRecord {
            account: account.clone(),
            cacao,
        })?;
        self.write(|t| {
            if let Some(existing) = read_identity(t, &binding.identity_key)? {
                if existing.account != account {
                    return abort(DirError::conflict());
                }
            }
            t.identities
                .insert(binding.identity_key.as_bytes(), record.as_slice())?;
            let mut keys = read_account_keys(t, &account)?;
            if !keys.contains(&binding.identity_key) {
                keys.push(binding.identity_key.clone());
                t.accounts
                    .insert(account.as_bytes(), to_json(&keys).map_err(abort_with)?)?;
            }
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

    /// `DELETE /identity`: removes the signing identity key; removing an
    /// account's last identity key also removes its invite key.
    pub async fn unregister_identity(&self, id_auth: &str, now_ms: i64) -> Result<Value, DirError> {
        let token = jwt::verify(id_auth, Action::UnregisterIdentity, &self.audience, now_ms)?;
        let account = token.account.canonical();
        self.write(|t| {
            let mut keys = authorised_keys(t, &account, &token.identity_key)?;
            keys.retain(|k| k != &token.identity_key);
            t.identities.remove(token.identity_key.as_bytes())?;
            if keys.is_empty() {
                t.accounts.remove(account.as_bytes())?;
                t.invites.remove(account.as_bytes())?;
            } else {
                t.accounts
                    .insert(account.as_bytes(), to_json(&keys).map_err(abort_with)?)?;
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
            authorised_keys(t, &account, &token.identity_key)?;
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
            authorised_keys(t, &account, &token.identity_key)?;
            t.invites.remove(account.as_bytes())?;
            Ok(())
        })
        .await?;
        Ok(Value::Null)
    }

    /// Runs `f` as one transaction over the directory's trees, then waits
    /// until it is on disk: callers reply only after this returns.
    async fn write(&self, f: impl Fn(&Trees) -> TxResult<()>) -> Result<(), DirError> {
        let result = (&self.identities, &self.accounts, &self.invites).transaction(
            |(identities, accounts, invites)| {
                f(&Trees {
                    identities,
                    accounts,
                    invites,
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

/// The account's identity keys, provided `identity_key` is one of them
/// (else 401: a valid token from a key the account never registered).
fn authorised_keys(t: &Trees, account: &str, identity_key: &str) -> TxResult<Vec<String>> {
    let keys = read_account_keys(t, account)?;
    if !keys.iter().any(|k| k == identity_key) {
        return abort(DirError::unauthorized());
    }
    Ok(keys)
}

fn read_account_keys(t: &Trees, account: &str) -> TxResult<Vec<String>> {
    match t.accounts.get(account.as_bytes())? {
        Some(bytes) => from_json(&bytes).map_err(abort_with),
        None => Ok(Vec::new()),
    }
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
