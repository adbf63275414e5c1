//! Every record layout of a data directory, in one place: the sled trees,
//! how their keys are encoded, and the records stored in them. Records are
//! JSON so that a data directory can be inspected with a few lines of code;
//! keys are chosen so that the listings the engine needs are prefix scans.
//! Nothing outside `crate::store` sees a tree or a key byte.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `users` | `username:provider` | [`UserRecord`] |
//! | `sessions` | SHA-256 of the token (32 bytes) | [`SessionRecord`] |
//! | `session_expiry` | expiry ms (i64, big endian) ++ session id | empty |
//! | `docs` | document id | [`DocRecord`] |
//! | `perms` | `doc \0 username:provider` | the level's letters (`arw`) |
//! | `user_docs` | `username:provider \0 doc` | the level's letters |
//! | `invites` | `doc \0` invite key's 32 bytes | [`InviteRecord`] |
//! | `expiry` | expiry ms (u64, big endian) `\0 doc \0` key bytes | empty |
//! | `keys` | API key id | [`KeyRecord`] |
//! | `key_index` | `doc \0 owner \0 id` (`doc` empty for account keys) | empty |
//! | `dir_identities` | identity did:key | [`IdentityRecord`] |
//! | `dir_account_keys` | `account \0 identity did:key` | empty |
//! | `dir_account_counts` | account | its number of identity keys (u32, big endian) |
//! | `dir_invites` | account | invite did:key |
//! | `dir_revocations` | identity did:key | last revocation ms (i64, big endian) |
//!
//! sled's default tree holds only markers: the layout version, an
//! unfinished import and the readiness probe.

use crate::model::User;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The on-disk layout this build reads, kept in the default tree so that a
/// data directory written with another layout is migrated, not misread.
pub(crate) const LAYOUT: &[u8] = b"3";
pub const LAYOUT_KEY: &[u8] = b"keystrate-layout";
/// Marks a store whose import has not finished; opening refuses it.
pub const IMPORT_MARK: &[u8] = b"keystrate-import-in-progress";
/// Key of the readiness probe's write.
pub(crate) const READY_MARKER: &[u8] = b"keystrate-ready-probe";
/// The name sled gives its default tree.
pub(crate) const DEFAULT_TREE: &[u8] = b"__sled__default";

/// The trees of the invite and permission server, in the order of
/// [`super::trees::Trees`].
pub(crate) const USERS: &str = "users";
pub(crate) const SESSIONS: &str = "sessions";
pub(crate) const SESSION_EXPIRY: &str = "session_expiry";
pub(crate) const DOCS: &str = "docs";
pub(crate) const PERMS: &str = "perms";
pub(crate) const USER_DOCS: &str = "user_docs";
pub(crate) const INVITES: &str = "invites";
pub(crate) const EXPIRY: &str = "expiry";
pub(crate) const KEYS: &str = "keys";
pub(crate) const KEY_INDEX: &str = "key_index";
/// The key directory's trees.
pub(crate) const IDENTITIES: &str = "dir_identities";
pub(crate) const ACCOUNT_KEYS: &str = "dir_account_keys";
pub(crate) const ACCOUNT_COUNTS: &str = "dir_account_counts";
pub(crate) const INVITE_KEYS: &str = "dir_invites";
pub(crate) const REVOCATIONS: &str = "dir_revocations";
/// Before `dir_account_keys`: one JSON list of identity keys per account,
/// moved to the two trees above when such a store is opened.
pub(crate) const LEGACY_ACCOUNTS: &str = "dir_accounts";

/// Separator inside composite keys. Ids never contain a NUL byte.
pub(crate) const SEP: u8 = 0;

/// A local (or provider) account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub provider: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl UserRecord {
    pub fn user(&self) -> User {
        User {
            username: self.username.clone(),
            provider: self.provider.clone(),
        }
    }
}

/// A session; its token is stored only as its [`SessionId`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: User,
    pub expires_at: i64,
}

/// What the server keeps of a session token: its SHA-256. Sockets carry it
/// so that a logout can find them.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(pub(crate) [u8; 32]);

/// Never printed: a session's digest is what finds it in storage.
impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(…)")
    }
}

impl SessionId {
    pub fn of(token: &str) -> SessionId {
        SessionId(Sha256::digest(token.as_bytes()).into())
    }
}

/// A document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocRecord {
    pub created_at: i64,
    pub created_by: User,
}

/// An invite as stored. Its key and document are in the record's sled key
/// (`doc \0 <key bytes>`), not repeated in the stored JSON: smaller records
/// keep sled's log, replay and page cache smaller (docs/benchmarks.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteRecord {
    #[serde(skip)]
    pub key: String,
    #[serde(skip)]
    pub doc: String,
    pub permissions: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub created_by: User,
    pub max_uses: Option<u64>,
    pub accepted_by: Vec<Acceptance>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Acceptance {
    pub user: User,
    pub at: i64,
}

/// Names one stored invite and its expiry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRef {
    pub doc: String,
    pub key: String,
    pub expires_at: i64,
}

impl InviteRecord {
    pub fn reference(&self) -> InviteRef {
        InviteRef {
            doc: self.doc.clone(),
            key: self.key.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// An API key (app keys name their document, account keys do not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    /// The document of an app key; `None` for an account key.
    pub doc: Option<String>,
    pub owner: User,
    pub name: String,
    pub secret: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What the key directory stores for one identity key. The CACAO's type is
/// the directory's; the store keeps it as the directory encodes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityRecord<C> {
    pub account: String,
    pub cacao: C,
}

/// A record already encoded as stored, for kinds whose type the store does
/// not own (the directory's identities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded(pub(crate) Vec<u8>);

impl Encoded {
    pub fn of<T: Serialize>(value: &T) -> Encoded {
        Encoded(serde_json::to_vec(value).expect("records always serialise"))
    }

    pub fn decode<T: DeserializeOwned>(&self, what: &'static str) -> Result<T, super::StoreError> {
        decode(&self.0, what)
    }
}

// ---- key encodings ----

/// Builds a composite key `a \0 b \0 …`.
pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(part);
    }
    out
}

/// The prefix `a \0 b \0` that every key starting with these parts shares.
pub(crate) fn prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = key(parts);
    out.push(SEP);
    out
}

/// The last part of a composite key.
pub(crate) fn last_part(key: &[u8]) -> &[u8] {
    match key.iter().rposition(|b| *b == SEP) {
        Some(i) => &key[i + 1..],
        None => key,
    }
}

pub(crate) fn perm_key(doc: &str, user: &User) -> Vec<u8> {
    key(&[doc.as_bytes(), user.id().as_bytes()])
}

pub(crate) fn user_doc_key(user: &User, doc: &str) -> Vec<u8> {
    key(&[user.id().as_bytes(), doc.as_bytes()])
}

/// Invite keys are 64 lowercase hex characters; anything else cannot exist.
pub fn well_formed_invite_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Bytes of an invite key as stored: its 32 bytes, not its 64 hex
/// characters, which keeps sled's log (replayed at start) and pages small.
const INVITE_KEY_BYTES: usize = 32;

/// `prefix` followed by the raw bytes of a well-formed (64 hex) invite key.
/// Every caller passes a key that was generated, read from storage, or
/// checked by `well_formed_invite_key`.
fn with_raw_key(mut prefix: Vec<u8>, invite_key: &str) -> Vec<u8> {
    prefix.extend(hex::decode(invite_key).expect("invite keys are checked before use"));
    prefix
}

/// Where an invite is stored: `doc \0 <key bytes>`, under its document, so
/// that listing a document's invites is a prefix scan.
pub(crate) fn invite_key(doc: &str, invite_key: &str) -> Vec<u8> {
    with_raw_key(prefix(&[doc.as_bytes()]), invite_key)
}

/// The expiry index entry, `deadline \0 doc \0 <key bytes>`.
pub(crate) fn invite_expiry_key(invite: &InviteRef) -> Vec<u8> {
    let deadline = (invite.expires_at.max(0) as u64).to_be_bytes();
    with_raw_key(prefix(&[&deadline, invite.doc.as_bytes()]), &invite.key)
}

/// Splits `doc \0 <key bytes>` (the tail of a record or expiry key) into
/// the document and the hex key.
pub(crate) fn split_doc_key(tail: &[u8]) -> Option<(String, String)> {
    let doc_len = tail.len().checked_sub(INVITE_KEY_BYTES + 1)?;
    if tail[doc_len] != SEP {
        return None;
    }
    let doc = String::from_utf8(tail[..doc_len].to_vec()).ok()?;
    Some((doc, hex::encode(&tail[doc_len + 1..])))
}

/// Reads an expiry index entry back into the invite it names.
pub(crate) fn parse_invite_expiry_key(k: &[u8]) -> Option<InviteRef> {
    let expires_at = i64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let (doc, key) = split_doc_key(k.get(9..)?)?;
    Some(InviteRef {
        doc,
        key,
        expires_at,
    })
}

/// Decodes the invite stored at `record_key`, filling in the document and
/// key that the sled key holds.
pub(crate) fn read_invite(
    record_key: &[u8],
    bytes: &[u8],
) -> Result<InviteRecord, super::StoreError> {
    let (doc, key) =
        split_doc_key(record_key).ok_or_else(|| super::StoreError::corrupt("invite"))?;
    let mut invite: InviteRecord = decode(bytes, "invite")?;
    invite.doc = doc;
    invite.key = key;
    Ok(invite)
}

/// `session_expiry` key: the deadline (big endian, so the tree is in
/// deadline order) then the session id.
pub(crate) fn session_expiry_key(expires_at: i64, id: &SessionId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&expires_at.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

pub(crate) fn parse_session_expiry_key(k: &[u8]) -> Option<(i64, SessionId)> {
    let deadline = i64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    Some((deadline, SessionId(k.get(8..)?.try_into().ok()?)))
}

/// `doc \0 owner \0 id` (with an empty `doc` for account keys).
pub(crate) fn key_index_key(record: &KeyRecord) -> Vec<u8> {
    let doc = record.doc.as_deref().unwrap_or("");
    key(&[
        doc.as_bytes(),
        record.owner.id().as_bytes(),
        record.id.as_bytes(),
    ])
}

/// `account \0 identity did:key`, the `dir_account_keys` key.
pub(crate) fn account_key(account: &str, identity_key: &str) -> Vec<u8> {
    key(&[account.as_bytes(), identity_key.as_bytes()])
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialise")
}

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, super::StoreError> {
    serde_json::from_slice(bytes).map_err(|e| super::StoreError::Corrupt {
        what,
        source: Some(std::sync::Arc::new(e)),
    })
}

pub(crate) fn utf8(bytes: &[u8], what: &'static str) -> Result<String, super::StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| super::StoreError::corrupt(what))
}

pub(crate) fn u32_from(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(0, u32::from_be_bytes)
}

pub(crate) fn i64_from(bytes: &[u8]) -> Option<i64> {
    <[u8; 8]>::try_from(bytes).ok().map(i64::from_be_bytes)
}
