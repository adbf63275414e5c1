//! Operator account management (`keystrate user list / passwd / delete`) and
//! a user's own password change. Each change is one transaction: a new
//! password ends the user's sessions with it; deleting a user takes its
//! sessions, permission entries, API keys and the invites it created along.

use super::accounts::{validate_password, NewSession, SessionId};
use super::{timestamp, Caller, Engine, Error, Level, Result, User};
use crate::store::{Change, KeysOf};
use serde::{Deserialize, Serialize};

/// One account as `keystrate user list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub username: String,
    pub provider: String,
    pub created_at: String,
}

fn no_such_user(user: &User) -> Error {
    Error::NotFound(format!("no such user {}", display_name(user)))
}

/// `alice` for a local user, `name:provider` otherwise (as `--owner` takes it).
pub fn display_name(user: &User) -> String {
    if user.provider == "local" {
        user.username.clone()
    } else {
        user.id()
    }
}

/// Parses `alice` (the local user) or `name:provider`.
pub fn parse_user(name: &str) -> User {
    match name.split_once(':') {
        Some((username, provider)) => User {
            username: username.to_string(),
            provider: provider.to_string(),
        },
        None => User::local(name),
    }
}

impl Engine {
    /// Every account, in id order (for the operator).
    pub fn list_users(&self, caller: &Caller) -> Result<Vec<UserSummary>> {
        caller.require_operator()?;
        Ok(self
            .store()
            .users()?
            .into_iter()
            .map(|record| UserSummary {
                username: record.username,
                provider: record.provider,
                created_at: timestamp(record.created_at),
            })
            .collect())
    }

    /// The operator sets a user's password (no old one needed); every
    /// session of the user ends and its sockets close.
    pub async fn set_password(&self, caller: &Caller, user: &User, password: &str) -> Result<()> {
        caller.require_operator()?;
        self.replace_password(user, password, None).await
    }

    /// Sets a new password and ends every session of the user except
    /// `keep` (the session that asked, for a user's own change); the ended
    /// sessions' sockets close.
    async fn replace_password(
        &self,
        user: &User,
        password: &str,
        keep: Option<&SessionId>,
    ) -> Result<()> {
        validate_password(password)?;
        let mut record = self.store().user(user)?.ok_or_else(|| no_such_user(user))?;
        record.password_hash = self.hash_password(password).await?;
        let sessions: Vec<(SessionId, i64)> = self
            .sessions_of(user)?
            .into_iter()
            .filter(|(id, _)| Some(id) != keep)
            .collect();
        // Deleted meanwhile: the commit is refused rather than bring the
        // account back.
        let mut changes = vec![Change::ReplaceUser(record)];
        changes.extend(drop_sessions(&sessions));
        self.store().commit(&changes)?;
        self.durable().await?;
        for (session, _) in &sessions {
            self.events().session_ended(session, "password changed");
        }
        tracing::info!(user = %user.id(), sessions = sessions.len(), "password changed; sessions ended");
        Ok(())
    }

    /// A logged-in user's own change: the current password must be right
    /// (checked, and throttled, as a login is). Every other session ends;
    /// the caller gets a fresh session in place of the one it used.
    pub async fn change_own_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<NewSession> {
        if user.provider != "local" {
            return Err(Error::bad("only local accounts have a password here"));
        }
        validate_password(new)?;
        let session = self
            .login(&user.username, current, client)
            .await
            .map_err(|e| match e {
                Error::Unauthorized(_) => Error::Unauthorized("Wrong current password".into()),
                e => e,
            })?;
        self.replace_password(user, new, Some(&SessionId::of(&session.token)))
            .await?;
        Ok(session)
    }

    /// Deletes a user with its sessions, permission entries, API keys and
    /// the invites it created, in one transaction. Refused, naming the
    /// documents, while the user is the last admin of any.
    pub async fn delete_user(&self, caller: &Caller, user: &User) -> Result<()> {
        caller.require_operator()?;
        let docs = {
            // Every document lock: no promotion or demotion may slip in
            // between the last-admin check and the change.
            let guards = self.lock_all_docs().await;
            if !self.user_exists(user)? {
                return Err(no_such_user(user));
            }
            let docs = self.docs_of(user)?;
            let mut sole_admin_of = Vec::new();
            for (doc, level) in &docs {
                if level.is_admin() && self.explicit_admins(doc)?.iter().all(|a| a == user) {
                    sole_admin_of.push(doc.as_str());
                }
            }
            if !sole_admin_of.is_empty() {
                return Err(Error::Conflict(format!(
                    "{} is the last admin of {}; make someone else admin there (or delete those documents) first",
                    display_name(user),
                    sole_admin_of.join(", ")
                )));
            }
            let mut changes = vec![Change::DropUser(user.clone())];
            changes.extend(drop_sessions(&self.sessions_of(user)?));
            let mut dropped_invites = Vec::new();
            for (doc, _) in &docs {
                changes.push(Change::SetPermission {
                    doc: doc.clone(),
                    user: user.clone(),
                    level: Level::None,
                });
                let leftovers = self.leftovers(doc, Some(user))?;
                dropped_invites.push(leftovers.invites);
                changes.extend(leftovers.changes);
            }
            for key in self.store().keys_of(KeysOf::Account(user))? {
                changes.push(Change::DropKey(key));
            }
            guards.commit(&changes)?;
            for ((doc, _), dropped) in docs.iter().zip(dropped_invites) {
                self.invite_counts().give_back(doc, dropped);
            }
            docs
        };
        self.durable().await?;
        self.events().user_sessions_ended(user, "account deleted");
        for (doc, _) in &docs {
            self.refresh_user(doc, user);
        }
        tracing::info!(user = %user.id(), documents = docs.len(), "user deleted");
        Ok(())
    }

    /// The documents where `user` has an explicit entry, with its level.
    fn docs_of(&self, user: &User) -> Result<Vec<(String, Level)>> {
        Ok(self.store().documents_of(user)?)
    }

    /// `user`'s sessions with their expiry.
    fn sessions_of(&self, user: &User) -> Result<Vec<(SessionId, i64)>> {
        Ok(self
            .store()
            .sessions_of(user)?
            .into_iter()
            .map(|(id, s)| (id, s.expires_at))
            .collect())
    }
}

/// The changes that end `sessions`.
fn drop_sessions(sessions: &[(SessionId, i64)]) -> impl Iterator<Item = Change> + '_ {
    sessions.iter().map(|(id, expires_at)| Change::DropSession {
        id: id.clone(),
        expires_at: *expires_at,
    })
}
