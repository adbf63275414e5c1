//! Invites: create, check, accept, get, remove, and the validity rule of
//! docs/protocol.md, "Invites". Every change to an invite happens under its document's
//! lock in one transaction, so concurrent accepts of a `maxUses: k` invite
//! grant exactly k users and a use count always equals its acceptors.

use super::options::{CreateOptions, Cursor, ListOptions};
use super::{now_ms, random_bytes, timestamp, Caller, Engine, Error, Level, Result, Task, User};
use crate::observe::invite_event;
pub(crate) use crate::store::schema::well_formed_invite_key as well_formed_key;
pub use crate::store::{Acceptance, InviteRecord};
use crate::store::{Change, InviteRef};
use serde::Serialize;

/// Most acceptors listed per invite (the latest); `uses` counts them all.
pub const LISTED_ACCEPTORS: usize = 20;

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

impl Engine {
    fn load_invite(&self, doc: &str, invite_key: &str) -> Result<Option<InviteRecord>> {
        Ok(self.store().invite(doc, invite_key)?)
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
            let shared = self.share_doc(doc).await;
            // Re-check under the lock: a concurrent demotion must not leave
            // an invite behind whose creator is no longer admin.
            self.require_admin(caller, doc, Task::Invites)?;
            self.invite_counts()
                .take(doc, || Ok(self.store().invite_count(doc)?))?;
            let written = shared.add_invite(invite.clone()).await;
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
        let guard = self.lock_doc(doc).await;
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
        let entry = Change::SetPermission {
            doc: doc.to_string(),
            user: user.clone(),
            level: after,
        };
        if first_time {
            guard.commit(&[Change::UpdateInvite(invite), entry])?;
        } else {
            guard.commit(&[entry])?;
        }
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
        for invite in self.store().invites_on(doc) {
            let invite = invite?;
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
            let (guard, _) = self.lock_as_admin(caller, doc, Task::Invites).await?;
            let invite = self
                .load_invite(doc, invite_key)?
                .ok_or(Error::RemoveFailed)?;
            guard.commit(&[Change::DropInvite(invite.reference())])?;
            self.invite_counts().give_back(doc, 1);
        }
        self.durable().await
    }

    /// Deletes expired invites of one document (the expiry task's job) in
    /// one transaction. An index entry names its invite exactly; a stale one
    /// (its invite already gone) goes too.
    pub(crate) async fn expire_invites(&self, doc: &str, due: &[InviteRef]) -> Result<()> {
        let changes: Vec<Change> = due.iter().cloned().map(Change::DropInvite).collect();
        let dropped = self.lock_doc(doc).await.commit(&changes)?.invites_dropped;
        self.invite_counts().give_back(doc, dropped);
        metrics::counter!(crate::observe::names::INVITES, "event" => "expired", "outcome" => "ok")
            .increment(dropped as u64);
        Ok(())
    }
}
