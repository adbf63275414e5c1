//! API keys: app keys (one document, made by one of its admins, the owner)
//! and account keys (a user's own). A key authenticates a program as its
//! owner, so invites made with it carry the owner as `createdBy`.
//!
//! Storage and secrets: HS256 JWTs are signed with the key's secret by the
//! program itself (as with Smooch), so verifying them needs the secret, not a
//! digest of it: the record keeps it. Protect the data directory accordingly.
//! The secret is shown on creation and, afterwards, only to the key's owner
//! (another admin of the same document could otherwise act as the owner).
//!
//! Lifetime: the store lists app keys by document and owner, which the
//! demotion cascade and document deletion in `documents.rs` read, so a
//! demoted owner's keys and a deleted document's keys disappear in the same
//! transaction. Every use re-checks that the owner is still admin.

use super::jwt;
use super::{now_ms, random_bytes, timestamp, Caller, Engine, Error, Result, Task, User};
pub use crate::store::KeyRecord;
use crate::store::{Change, KeysOf};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

pub const APP_PREFIX: &str = "app_";
pub const ACCOUNT_PREFIX: &str = "act_";
pub const MAX_NAME: usize = 100;

/// The Smooch v1 shape `{"secret","name","_id"}`; `secret` is null unless
/// the viewer may see it (see the module docs).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub secret: Option<String>,
    pub name: String,
    #[serde(rename = "_id")]
    pub id: String,
}

/// Every recorded field, for operators (admin socket, CLI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyDetails {
    pub id: String,
    pub name: String,
    pub owner: User,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl KeyRecord {
    /// The wire view for `viewer`.
    pub fn view_for(&self, viewer: &User) -> KeyView {
        KeyView {
            secret: (&self.owner == viewer).then(|| self.secret.clone()),
            name: self.name.clone(),
            id: self.id.clone(),
        }
    }

    pub fn details(&self) -> KeyDetails {
        KeyDetails {
            id: self.id.clone(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            created_at: timestamp(self.created_at),
            last_used_at: self.last_used_at.map(timestamp),
        }
    }

    /// `<id>/<secret>`, the form used with `?key=` and `Bearer`.
    pub fn full_key(&self) -> String {
        format!("{}/{}", self.id, self.secret)
    }

    /// The identity a program acts under when it uses this key.
    pub fn caller(&self) -> Caller {
        Caller::User(self.owner.clone())
    }

    fn scope(&self) -> &'static str {
        if self.doc.is_some() {
            "app"
        } else {
            "account"
        }
    }
}

/// Where a key belongs: a document (app keys) or a user (account keys).
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Doc(&'a str),
    Account(&'a User),
}

impl Holder<'_> {
    fn stored(&self) -> KeysOf<'_> {
        match self {
            Holder::Doc(doc) => KeysOf::Document(doc),
            Holder::Account(user) => KeysOf::Account(user),
        }
    }

    fn id_prefix(&self) -> &'static str {
        match self {
            Holder::Doc(_) => APP_PREFIX,
            Holder::Account(_) => ACCOUNT_PREFIX,
        }
    }

    fn owns(&self, record: &KeyRecord) -> bool {
        match self {
            Holder::Doc(doc) => record.doc.as_deref() == Some(doc),
            Holder::Account(user) => record.doc.is_none() && &record.owner == *user,
        }
    }

    /// The lock that orders key changes with permission changes.
    fn lock_name(&self) -> &str {
        match self {
            Holder::Doc(doc) => doc,
            Holder::Account(_) => "",
        }
    }
}

/// `app_` or `act_` followed by 24 lowercase hex digits.
fn well_formed_id(id: &str) -> bool {
    let hex = id
        .strip_prefix(APP_PREFIX)
        .or_else(|| id.strip_prefix(ACCOUNT_PREFIX));
    hex.is_some_and(|h| h.len() == 24 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Names are shown in lists and printed one per line by the CLI.
fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::bad(format!(
            "name must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    Ok(name.to_string())
}

fn unauthorized() -> Error {
    Error::Unauthorized("Invalid API key".into())
}

fn no_such_key(id: &str) -> Error {
    Error::NotFound(format!("No such key {id}"))
}

impl Engine {
    /// Creates an app key on `doc` owned by the caller, who must be admin.
    pub async fn create_app_key(
        &self,
        caller: &Caller,
        doc: &str,
        name: &str,
    ) -> Result<KeyRecord> {
        let owner = self.require_admin(caller, doc, Task::ApiKeys)?.clone();
        self.create_key(Holder::Doc(doc), caller, owner, name).await
    }

    /// Creates an account key for the caller.
    pub async fn create_account_key(&self, caller: &Caller, name: &str) -> Result<KeyRecord> {
        let owner = self.require_key_user(caller)?.clone();
        self.create_key(Holder::Account(&owner), caller, owner.clone(), name)
            .await
    }

    async fn create_key(
        &self,
        holder: Holder<'_>,
        caller: &Caller,
        owner: User,
        name: &str,
    ) -> Result<KeyRecord> {
        let record = KeyRecord {
            id: format!(
                "{}{}",
                holder.id_prefix(),
                hex::encode(random_bytes::<12>())
            ),
            doc: match holder {
                Holder::Doc(doc) => Some(doc.to_string()),
                Holder::Account(_) => None,
            },
            owner,
            name: validate_name(name)?,
            secret: URL_SAFE_NO_PAD.encode(random_bytes::<24>()),
            created_at: now_ms(),
            last_used_at: None,
        };
        {
            let guard = self.lock_doc(holder.lock_name()).await;
            if let Holder::Doc(doc) = holder {
                // Re-check under the lock: a concurrent demotion must not
                // leave a key behind whose owner is no longer admin.
                self.require_admin(caller, doc, Task::ApiKeys)?;
            }
            guard.commit(&[Change::PutKey(record.clone())])?;
        }
        self.durable().await?;
        tracing::info!(key = %record.id, owner = %record.owner.id(), doc = ?record.doc, "API key created");
        Ok(record)
    }

    /// Every key of a holder, oldest first. No permission check: this is
    /// the operator's (admin socket, CLI); a caller's request goes through
    /// [`Engine::keys_for`].
    pub fn keys_of(&self, holder: Holder<'_>) -> Result<Vec<KeyRecord>> {
        if let Holder::Doc(doc) = holder {
            if !self.document_exists(doc)? {
                return Err(Error::NoSuchDocument(doc.to_string()));
            }
        }
        let mut out = self.store().keys_of(holder.stored())?;
        out.retain(|r| holder.owns(r));
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One key of a holder, or `not_found`.
    pub fn key_of(&self, holder: Holder<'_>, id: &str) -> Result<KeyRecord> {
        if let Holder::Doc(doc) = holder {
            if !self.document_exists(doc)? {
                return Err(Error::NoSuchDocument(doc.to_string()));
            }
        }
        if !well_formed_id(id) {
            return Err(no_such_key(id));
        }
        self.store()
            .key(id)?
            .filter(|r| holder.owns(r))
            .ok_or_else(|| no_such_key(id))
    }

    /// Deletes one key of a holder. No permission check: the operator's; a
    /// caller's request goes through [`Engine::delete_key_for`].
    pub async fn delete_key_of(&self, holder: Holder<'_>, id: &str) -> Result<()> {
        {
            let guard = self.lock_doc(holder.lock_name()).await;
            guard.commit(&[Change::DropKey(self.key_of(holder, id)?)])?;
        }
        self.key_deleted(id).await
    }

    /// Deletes one app key of `doc` for an admin of it (or the operator),
    /// checked again under the document's lock, as
    /// [`Engine::lock_as_admin`] does: a demoted admin must not act after
    /// its demotion committed.
    pub async fn delete_app_key(&self, caller: &Caller, doc: &str, id: &str) -> Result<()> {
        self.require_key_manager(caller, doc)?;
        {
            let guard = self.lock_doc(doc).await;
            self.require_key_manager(caller, doc)?;
            guard.commit(&[Change::DropKey(self.key_of(Holder::Doc(doc), id)?)])?;
        }
        self.key_deleted(id).await
    }

    /// Replies after the deletion is durable.
    async fn key_deleted(&self, id: &str) -> Result<()> {
        self.durable().await?;
        tracing::info!(key = %id, "API key deleted");
        Ok(())
    }

    /// An HS256 JWT for a key, signed with its secret; the key's own scope
    /// (`app` or `account`) is the only claim, as Smooch issues them. Only
    /// its owner may have one: see [`Engine::jwt_for`].
    pub(crate) fn key_jwt(&self, holder: Holder<'_>, id: &str) -> Result<String> {
        let record = self.key_of(holder, id)?;
        jwt::sign(
            &record.id,
            record.secret.as_bytes(),
            &json!({"scope": record.scope()}),
        )
        .map_err(|e| Error::Internal(format!("signing a JWT: {e}")))
    }

    /// Logged-in users only: anonymous callers have no account to key.
    fn require_key_user<'c>(&self, caller: &'c Caller) -> Result<&'c User> {
        caller
            .user()
            .ok_or_else(|| Error::Unauthorized("Must be logged in".into()))
    }

    /// Authenticates `<id>/<secret>` (the `?key=` and plain Bearer form).
    pub fn authenticate_full_key(&self, full: &str) -> Result<KeyRecord> {
        let (id, secret) = full.split_once('/').ok_or_else(unauthorized)?;
        self.authenticate_secret(id, secret)
    }

    /// Authenticates an `Authorization` header value: `Bearer <id>/<secret>`,
    /// `Bearer <JWT>` or `Basic base64(<id>:<secret>)`.
    pub fn authenticate_header(&self, value: &str) -> Result<KeyRecord> {
        let malformed = |what: &str| {
            Error::Unauthorized(format!(
                "Malformed Authorization header: {what}; expected Basic base64(<id>:<secret>), \
                 Bearer <id>/<secret> or Bearer <JWT>"
            ))
        };
        let (scheme, credentials) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| malformed("no credentials after the scheme"))?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if credentials.contains('/') {
                self.authenticate_full_key(credentials)
            } else {
                self.authenticate_jwt(credentials)
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(credentials).map_err(|_| {
                malformed("Basic credentials are not base64 (wrapped lines? use base64 -w0)")
            })?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| malformed("Basic credentials are not UTF-8"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| malformed("Basic credentials have no ':'"))?;
            self.authenticate_secret(id, secret)
        } else {
            Err(malformed("unknown scheme"))
        }
    }

    /// Checks a key's secret in constant time.
    pub fn authenticate_secret(&self, id: &str, secret: &str) -> Result<KeyRecord> {
        let record = self.load_key(id)?;
        if !bool::from(record.secret.as_bytes().ct_eq(secret.as_bytes())) {
            return Err(unauthorized());
        }
        self.key_in_use(record)
    }

    /// Verifies an HS256 JWT signed with the secret of its `kid`, whose
    /// `scope` must match the kind of that key (`app` or `account`).
    pub fn authenticate_jwt(&self, token: &str) -> Result<KeyRecord> {
        let refused = |e: jwt::JwtError| Error::Unauthorized(e.to_string());
        let unverified = jwt::parse(token).map_err(refused)?;
        let record = self.load_key(&unverified.kid)?;
        let claims = unverified
            .verify(record.secret.as_bytes())
            .map_err(refused)?;
        if claims.get("scope").and_then(|s| s.as_str()) != Some(record.scope()) {
            return Err(Error::Unauthorized(format!(
                "JWT scope must be \"{}\" for key {}",
                record.scope(),
                record.id
            )));
        }
        self.key_in_use(record)
    }

    fn load_key(&self, id: &str) -> Result<KeyRecord> {
        if !well_formed_id(id) {
            return Err(unauthorized());
        }
        self.store().key(id)?.ok_or_else(unauthorized)
    }

    /// A key works only while its owner is admin of its document (or, for
    /// account keys, still has an account); a use is recorded.
    fn key_in_use(&self, mut record: KeyRecord) -> Result<KeyRecord> {
        let alive = match &record.doc {
            Some(doc) => self.effective_level(doc, Some(&record.owner))?.is_admin(),
            None => self.user_exists(&record.owner)?,
        };
        if !alive {
            return Err(unauthorized());
        }
        let now = now_ms();
        // Best effort and cheap: at most one write a second per key, as a
        // single-record compare-and-swap (no lock, not awaited for
        // durability), so a busy key does not serialise its users.
        if record.last_used_at.is_none_or(|t| now - t >= 1000) {
            let before = record.clone();
            record.last_used_at = Some(now);
            self.store().record_key_use(&before, &record)?;
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(well_formed_id("app_0123456789abcdef01234567"));
        assert!(well_formed_id("act_0123456789abcdef01234567"));
        for bad in [
            "app_0123",
            "app_0123456789ABCDEF01234567",
            "key_0123456789abcdef01234567",
            "",
        ] {
            assert!(!well_formed_id(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("  ci bot ").unwrap(), "ci bot");
        assert!(validate_name("").is_err());
        assert!(validate_name("a\tb").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}
