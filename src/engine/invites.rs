//! Invites: create, check, accept, get, remove, and the validity rule of
//! docs/protocol.md, "Invites". Every change to an invite happens under its document's
//! lock in one transaction, so concurrent accepts of a `maxUses: k` invite
//! grant exactly k users and a use count always equals its acceptors.

use super::documents::tx_set_entry;
use super::options::{CreateOptions, Cursor, ListOptions};
use super::{now_ms, random_bytes, timestamp, Caller, Engine, Error, Level, Result, Task, User};
use crate::observe::invite_event;
use crate::store::{decode, prefix, tx_put_json, StoreError, Tx, SEP};
use serde::{Deserialize, Serialize};
use sled::transaction::UnabortableTransactionError;

/// Most acceptors listed per invite (the latest); `uses` counts them all.
pub const LISTED_ACCEPTORS: usize = 20;

/// An invite as stored. Its key and document are in the record's sled key
/// (`doc \0 <key bytes>`), not repeated in the stored JSON: smaller records keep
/// sled's log, replay and page cache smaller (docs/benchmarks.md).
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

impl InviteRecord {
    fn level(&self) -> Level {
        Level::parse(&self.permissions).unwrap_or(Level::None)
    }

    fn accepted(&self, user: &User) -> bool {
        self.accepted_by.iter().any(|a| &a.user == user)
    }

    fn used_up_for(&self, user: &User) -> bool {
        match self.max_uses {
            Some(max) => self.accepted_by.len() as u64 >= max && !self.accepted(user),
            None => false,
        }
    }

    /// The validity rule (docs/protocol.md, "Invites") for `user` on `doc` at `now`, given
    /// whether the creator is still admin there.
    pub fn validity(&self, doc: &str, now: i64, creator_is_admin: bool, user: &User) -> Result<()> {
        if self.doc != doc || now >= self.expires_at {
            return Err(Error::InvalidKey);
        }
        if !creator_is_admin {
            return Err(Error::InviterNotAdmin);
        }
        if self.used_up_for(user) {
            return Err(Error::UsedUp);
        }
        Ok(())
    }

    /// The wire object; `acceptedBy` (the latest [`LISTED_ACCEPTORS`]) only
    /// for admins listing invites.
    pub fn view(&self, with_acceptors: bool) -> Invite {
        Invite {
            key: self.key.clone(),
            webstrate_id: self.doc.clone(),
            permissions: self.permissions.clone(),
            expires_at: timestamp(self.expires_at),
            created_at: timestamp(self.created_at),
            created_by: self.created_by.clone(),
            max_uses: self.max_uses,
            uses: self.accepted_by.len() as u64,
            accepted_by: with_acceptors.then(|| {
                let skip = self.accepted_by.len().saturating_sub(LISTED_ACCEPTORS);
                self.accepted_by[skip..]
                    .iter()
                    .map(|a| AcceptedBy {
                        username: a.user.username.clone(),
                        provider: a.user.provider.clone(),
                        at: timestamp(a.at),
                    })
                    .collect()
            }),
        }
    }
}

/// An invite on the wire.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    pub key: String,
    pub webstrate_id: String,
    pub permissions: String,
    pub expires_at: String,
    pub created_at: String,
    pub created_by: User,
    pub max_uses: Option<u64>,
    pub uses: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<Vec<AcceptedBy>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AcceptedBy {
    pub username: String,
    pub provider: String,
    pub at: String,
}

/// An invite of a listing, ordered by its place alone.
struct Listed(Cursor, Invite);

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Listed {}
impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// A page of a listing, and where the next one starts (`None`: the last).
#[derive(Debug, Clone)]
pub struct InvitePage {
    pub invites: Vec<Invite>,
    pub next: Option<String>,
}

/// Invite keys are 64 lowercase hex characters; anything else cannot exist.
pub(crate) fn well_formed_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Bytes of an invite key as stored: its 32 bytes, not its 64 hex
/// characters, which keeps sled's log (replayed at start) and pages small.
const KEY_BYTES: usize = 32;

/// `prefix` followed by the raw bytes of a well-formed (64 hex) invite key.
/// Every caller passes a key that was generated, read from storage, or
/// checked by `well_formed_key`.
fn with_raw_key(mut prefix: Vec<u8>, invite_key: &str) -> Vec<u8> {
    prefix.extend(hex::decode(invite_key).expect("invite keys are checked before use"));
    prefix
}

/// Where an invite is stored: `doc \0 <key bytes>`, under its document, so
/// that listing a document's invites is a prefix scan.
pub fn record_key(doc: &str, invite_key: &str) -> Vec<u8> {
    with_raw_key(prefix(&[doc.as_bytes()]), invite_key)
}

/// Splits `doc \0 <key bytes>` (the tail of a record or expiry key) into
/// the document and the hex key.
pub(crate) fn split_doc_key(tail: &[u8]) -> Option<(String, String)> {
    let doc_len = tail.len().checked_sub(KEY_BYTES + 1)?;
    if tail[doc_len] != SEP {
        return None;
    }
    let doc = String::from_utf8(tail[..doc_len].to_vec()).ok()?;
    Some((doc, hex::encode(&tail[doc_len + 1..])))
}

/// Decodes the invite stored at `record_key`, filling in the document and
/// key that the sled key holds.
pub(crate) fn read_record(
    record_key: &[u8],
    bytes: &[u8],
) -> std::result::Result<InviteRecord, StoreError> {
    let (doc, key) = split_doc_key(record_key)
        .ok_or_else(|| StoreError("invite stored under a malformed key".into()))?;
    let mut invite: InviteRecord = decode(bytes)?;
    invite.doc = doc;
    invite.key = key;
    Ok(invite)
}

/// An expired invite's key and its expiry index entry.
pub(crate) type DueInvite = (String, Vec<u8>);

/// The expiry index entry, `deadline \0 doc \0 <key bytes>`.
pub(crate) fn expiry_key(expires_at: i64, doc: &str, invite_key: &str) -> Vec<u8> {
    let deadline = (expires_at.max(0) as u64).to_be_bytes();
    with_raw_key(prefix(&[&deadline, doc.as_bytes()]), invite_key)
}

pub(crate) fn tx_put_invite(
    tx: &Tx,
    invite: &InviteRecord,
) -> std::result::Result<(), UnabortableTransactionError> {
    tx_put_json(tx.invites, &record_key(&invite.doc, &invite.key), invite)?;
    tx.expiry
        .insert(expiry_key(invite.expires_at, &invite.doc, &invite.key), &[])?;
    Ok(())
}

/// Deletes an invite's record and its expiry entry. Callers hold the
/// document's lock and already know both keys (from the record or from the
/// expiry index), so nothing is read again here; deleting what is already
/// gone is a no-op. True when the invite was there.
pub(crate) fn tx_drop_invite(
    tx: &Tx,
    record_key: &[u8],
    expiry_key: &[u8],
) -> std::result::Result<bool, UnabortableTransactionError> {
    let existed = tx.invites.remove(record_key)?.is_some();
    tx.expiry.remove(expiry_key)?;
    Ok(existed)
}

impl InviteRecord {
    /// Where this invite and its expiry entry are stored.
    pub(crate) fn storage_keys(&self) -> (Vec<u8>, Vec<u8>) {
        (
            record_key(&self.doc, &self.key),
            expiry_key(self.expires_at, &self.doc, &self.key),
        )
    }
}

impl Engine {
    fn load_invite(&self, doc: &str, invite_key: &str) -> Result<Option<InviteRecord>> {
        if !well_formed_key(invite_key) {
            return Ok(None);
        }
        let at = record_key(doc, invite_key);
        match self.store().invites.get(&at).map_err(StoreError::from)? {
            Some(bytes) => Ok(Some(read_record(&at, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The invite if it is valid for `user` on `doc` now (docs/protocol.md, "Invites").
    fn valid_invite(&self, doc: &str, invite_key: &str, user: &User) -> Result<InviteRecord> {
        let invite = self
            .load_invite(doc, invite_key)?
            .ok_or(Error::InvalidKey)?;
        let creator_is_admin = self
            .effective_level(doc, Some(&invite.created_by))?
            .is_admin();
        invite.validity(doc, now_ms(), creator_is_admin, user)?;
        Ok(invite)
    }

    pub async fn create_invite(
        &self,
        caller: &Caller,
        doc: &str,
        options: &CreateOptions,
    ) -> Result<Invite> {
        invite_event(
            "created",
            self.create_invite_inner(caller, doc, options).await,
        )
    }

    async fn create_invite_inner(
        &self,
        caller: &Caller,
        doc: &str,
        options: &CreateOptions,
    ) -> Result<Invite> {
        let creator = self.require_admin(caller, doc, Task::Invites)?.clone();
        let now = now_ms();
        let invite = InviteRecord {
            key: hex::encode(random_bytes::<32>()),
            doc: doc.to_string(),
            permissions: options.permissions.as_str().to_string(),
            created_at: now,
            expires_at: now + options.max_age * 1000,
            created_by: creator,
            max_uses: options.max_uses,
            accepted_by: Vec::new(),
        };
        {
            let _shared = self.share_doc(doc).await;
            // Re-check under the lock: a concurrent demotion must not leave
            // an invite behind whose creator is no longer admin.
            self.require_admin(caller, doc, Task::Invites)?;
            self.invite_counts()
                .take(doc, || self.count_stored_invites(doc))?;
            let record = invite.clone();
            let written = self
                .store()
                .write_combined(Box::new(move |tx| tx_put_invite(tx, &record)))
                .await;
            if written.is_err() {
                self.invite_counts().give_back(doc, 1);
            }
            written?;
        }
        self.durable().await?;
        self.expiry_changed();
        Ok(invite.view(false))
    }

    /// Refuses a check/accept while the caller's failure budget is spent.
    fn not_blocked(&self, user: &User) -> Result<()> {
        if self.failures().is_blocked(&user.id()) {
            crate::observe::refused("invite_failures");
            return Err(Error::RateLimited);
        }
        Ok(())
    }

    /// Counts a failed check/accept against the caller's budget.
    fn count_failure<T>(&self, user: &User, result: Result<T>) -> Result<T> {
        if matches!(
            result,
            Err(Error::InvalidKey | Error::InviterNotAdmin | Error::UsedUp | Error::BadRequest(_))
        ) {
            self.failures().record(&user.id());
        }
        result
    }

    pub fn check_invite(&self, caller: &Caller, doc: &str, invite_key: &str) -> Result<Invite> {
        let user = caller.require_user(Task::Invites)?;
        self.not_blocked(user)?;
        let result = self
            .caller_level(caller, doc)
            .and_then(|_| self.valid_invite(doc, invite_key, user));
        Ok(self.count_failure(user, result)?.view(false))
    }

    /// Accepts an invite; returns the caller's new effective permission.
    pub async fn accept_invite(
        &self,
        caller: &Caller,
        doc: &str,
        invite_key: &str,
    ) -> Result<Level> {
        invite_event(
            "accepted",
            self.accept_invite_inner(caller, doc, invite_key).await,
        )
    }

    async fn accept_invite_inner(
        &self,
        caller: &Caller,
        doc: &str,
        invite_key: &str,
    ) -> Result<Level> {
        let user = caller.require_user(Task::Invites)?;
        self.not_blocked(user)?;
        let result = self.accept_under_lock(caller, doc, invite_key, user).await;
        let (before, after) = self.count_failure(user, result)?;
        self.durable().await?;
        if after != before {
            self.refresh_user(doc, user);
        }
        Ok(after)
    }

    /// The read-then-write part of an accept: validity, merge, one
    /// transaction for the use count and the permission entry.
    async fn accept_under_lock(
        &self,
        caller: &Caller,
        doc: &str,
        invite_key: &str,
        user: &User,
    ) -> Result<(Level, Level)> {
        self.caller_level(caller, doc)?;
        let _guard = self.lock_doc(doc).await;
        let mut invite = self.valid_invite(doc, invite_key, user)?;
        let before = self.effective_level(doc, Some(user))?;
        let after = before.merge(invite.level());
        let first_time = !invite.accepted(user);
        if first_time {
            invite.accepted_by.push(Acceptance {
                user: user.clone(),
                at: now_ms(),
            });
        }
        self.store().write(|tx| {
            if first_time {
                tx_put_json(tx.invites, &record_key(doc, &invite.key), &invite)?;
            }
            tx_set_entry::<Error>(tx, doc, user, after)
        })?;
        Ok((before, after))
    }

    /// One page of the document's valid invites (the caller's own, or
    /// all), oldest first. Invites are judged one by one as they are read,
    /// and at most a page of them is kept, however many the document holds.
    pub fn get_invites(
        &self,
        caller: &Caller,
        doc: &str,
        options: &ListOptions,
    ) -> Result<InvitePage> {
        let me = self.require_admin(caller, doc, Task::Invites)?;
        let now = now_ms();
        let mut creator_is_admin = std::collections::HashMap::new();
        // The `limit + 1` first invites past the cursor: the extra one says
        // whether another page follows.
        let mut first = std::collections::BinaryHeap::new();
        for item in self.store().invites.scan_prefix(prefix(&[doc.as_bytes()])) {
            let (k, v) = item.map_err(StoreError::from)?;
            let invite = read_record(&k, &v)?;
            let place = Cursor(invite.created_at, invite.key.clone());
            if (!options.all && &invite.created_by != me)
                || options.after.as_ref().is_some_and(|after| &place <= after)
            {
                continue;
            }
            let admin = match creator_is_admin.get(&invite.created_by) {
                Some(a) => *a,
                None => {
                    let a = self
                        .effective_level(doc, Some(&invite.created_by))?
                        .is_admin();
                    creator_is_admin.insert(invite.created_by.clone(), a);
                    a
                }
            };
            if invite.validity(doc, now, admin, me).is_ok() {
                first.push(Listed(place, invite.view(true)));
                if first.len() > options.limit + 1 {
                    first.pop();
                }
            }
        }
        let mut invites = first.into_sorted_vec();
        let next = (invites.len() > options.limit).then(|| {
            invites.truncate(options.limit);
            invites.last().map(|Listed(place, _)| place.to_string())
        });
        Ok(InvitePage {
            invites: invites.into_iter().map(|Listed(_, view)| view).collect(),
            next: next.flatten(),
        })
    }

    /// Every invite stored for `doc`, valid or not.
    pub(crate) fn stored_invites(&self, doc: &str) -> Result<Vec<InviteRecord>> {
        let mut out = Vec::new();
        for item in self.store().invites.scan_prefix(prefix(&[doc.as_bytes()])) {
            let (k, v) = item.map_err(StoreError::from)?;
            out.push(read_record(&k, &v)?);
        }
        Ok(out)
    }

    /// Deletes an invite; its creator or any admin may.
    pub async fn remove_invite(&self, caller: &Caller, doc: &str, invite_key: &str) -> Result<()> {
        invite_event(
            "removed",
            self.remove_invite_inner(caller, doc, invite_key).await,
        )
    }

    async fn remove_invite_inner(
        &self,
        caller: &Caller,
        doc: &str,
        invite_key: &str,
    ) -> Result<()> {
        {
            let _guard = self.lock_as_admin(caller, doc, Task::Invites).await?;
            let invite = self
                .load_invite(doc, invite_key)?
                .ok_or(Error::RemoveFailed)?;
            let (record, expiry) = invite.storage_keys();
            self.store().write::<(), Error>(|tx| {
                tx_drop_invite(tx, &record, &expiry)?;
                Ok(())
            })?;
            self.invite_counts().give_back(doc, 1);
        }
        self.durable().await
    }

    /// Deletes expired invites of one document (the expiry task's job) in
    /// one transaction.
    pub(crate) async fn expire_invites(&self, doc: &str, due: &[DueInvite]) -> Result<()> {
        let _guard = self.lock_doc(doc).await;
        let dropped = self.store().write::<usize, Error>(|tx| {
            // An index entry names its invite exactly; a stale one (its
            // invite already gone) goes too.
            let mut dropped = 0;
            for (invite_key, index_key) in due {
                dropped +=
                    usize::from(tx_drop_invite(tx, &record_key(doc, invite_key), index_key)?);
            }
            Ok(dropped)
        })?;
        self.invite_counts().give_back(doc, dropped);
        metrics::counter!(crate::observe::names::INVITES, "event" => "expired", "outcome" => "ok")
            .increment(dropped as u64);
        Ok(())
    }

    /// How many invites `doc` has in storage (keys only, nothing decoded).
    fn count_stored_invites(&self, doc: &str) -> Result<usize> {
        let mut n = 0;
        for item in self
            .store()
            .invites
            .scan_prefix(prefix(&[doc.as_bytes()]))
            .keys()
        {
            item.map_err(StoreError::from)?;
            n += 1;
        }
        Ok(n)
    }
}
