//! Operator account management (`keystrate user list / passwd / delete`) and
//! a user's own password change. Each change is one transaction: a new
//! password ends the user's sessions with it; deleting a user takes its
//! sessions, permission entries, API keys and the invites it created along.

use super::accounts::{tx_drop_session, validate_password, NewSession, SessionId, SessionRecord};
use super::documents::Leftovers;
use super::{timestamp, Caller, Engine, Error, Level, Result, User};
use crate::store::{decode, get_json, last_part, prefix, tx_put_json, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One account as `keystrate user list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    pub username: String,
    pub provider: String,
    pub created_at: String,
}

/// The fields of a stored user record this module reads; the rest of the
/// record is kept as it is.
#[derive(Deserialize)]
struct StoredUser {
    username: String,
    provider: String,
    created_at: i64,
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
        let mut out = Vec::new();
        for item in self.store().users.iter() {
            let (_, v) = item.map_err(StoreError::from)?;
            let record: StoredUser = decode(&v)?;
            out.push(UserSummary {
                username: record.username,
                provider: record.provider,
                created_at: timestamp(record.created_at),
            });
        }
        Ok(out)
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
        let mut record: Value = get_json(&self.store().users, user.id().as_bytes())?
            .ok_or_else(|| no_such_user(user))?;
        record["password_hash"] = Value::String(self.hash_password(password).await?);
        let sessions: Vec<(SessionId, i64)> = self
            .sessions_of(user)?
            .into_iter()
            .filter(|(id, _)| Some(id) != keep)
            .collect();
        let id = user.id();
        self.store().write(|tx| {
            // Deleted meanwhile: do not bring the account back.
            if tx.users.get(id.as_bytes())?.is_none() {
                return Err(sled::transaction::ConflictableTransactionError::Abort(
                    no_such_user(user),
                ));
            }
            tx_put_json(tx.users, id.as_bytes(), &record)?;
            for (session, expires_at) in &sessions {
                tx_drop_session(tx, session, *expires_at)?;
            }
            Ok(())
        })?;
        self.durable().await?;
        for (session, _) in &sessions {
            self.events().session_ended(session, "password changed");
        }
        tracing::info!(user = %id, sessions = sessions.len(), "password changed; sessions ended");
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
            let _guards = self.lock_all_docs().await;
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
            let mut leftovers = Vec::new();
            for (doc, _) in &docs {
                leftovers.push(self.leftovers(doc, Some(user))?);
            }
            let account_keys = super::documents::scan_keys(
                &self.store().key_index,
                &prefix(&[b"", user.id().as_bytes()]),
            )?;
            let sessions = self.sessions_of(user)?;
            let id = user.id();
            self.store().write(|tx| {
                tx.users.remove(id.as_bytes())?;
                for (session, expires_at) in &sessions {
                    tx_drop_session(tx, session, *expires_at)?;
                }
                for (doc, _) in &docs {
                    super::documents::tx_set_entry::<Error>(tx, doc, user, Level::None)?;
                }
                for l in &leftovers {
                    l.delete::<Error>(tx)?;
                }
                Leftovers {
                    invites: Vec::new(),
                    keys: account_keys.clone(),
                }
                .delete::<Error>(tx)
            })?;
            for ((doc, _), l) in docs.iter().zip(&leftovers) {
                self.invite_counts().give_back(doc, l.invites.len());
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
        let mut out = Vec::new();
        for item in self
            .store()
            .user_docs
            .scan_prefix(prefix(&[user.id().as_bytes()]))
        {
            let (k, v) = item.map_err(StoreError::from)?;
            out.push((
                String::from_utf8_lossy(last_part(&k)).into_owned(),
                Level::from_stored(&v),
            ));
        }
        Ok(out)
    }

    /// `user`'s sessions with their expiry. Sessions are keyed by token
    /// digest, so this scans them all: fine for these rare operator changes.
    fn sessions_of(&self, user: &User) -> Result<Vec<(SessionId, i64)>> {
        let mut out = Vec::new();
        for item in self.store().sessions.iter() {
            let (k, v) = item.map_err(StoreError::from)?;
            match (SessionId::from_stored(&k), decode::<SessionRecord>(&v)) {
                (Some(id), Ok(s)) if &s.user == user => out.push((id, s.expires_at)),
                _ => {}
            }
        }
        Ok(out)
    }
}
