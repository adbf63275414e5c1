//! Who may see and manage which API keys: an app's keys belong to the
//! admins of its document, an account's keys to their user, and only a
//! key's owner may mint a JWT with it (the JWT is as good as the secret).
//! Every route acting for a caller goes through these checks, the admin
//! socket's operator too (its bypass is in `operator.rs`); the unchecked
//! [`Engine::keys_of`] and [`Engine::delete_key_of`] are the building
//! blocks under them.

use super::keys::{Holder, KeyRecord};
use super::{Caller, Engine, Error, Result, Task};

/// Which keys a request is about.
#[derive(Debug, Clone, Copy)]
pub enum KeyScope<'a> {
    /// The app keys of a document.
    App(&'a str),
    /// The caller's own account keys.
    Account,
}

impl Engine {
    /// The holder whose keys `caller` may manage in `scope`.
    fn managed_holder<'a>(&self, caller: &'a Caller, scope: KeyScope<'a>) -> Result<Holder<'a>> {
        match scope {
            KeyScope::App(doc) => {
                self.require_key_manager(caller, doc)?;
                Ok(Holder::Doc(doc))
            }
            KeyScope::Account => Ok(Holder::Account(caller.require_user(Task::ApiKeys)?)),
        }
    }

    /// The keys of `scope` that `caller` may manage, oldest first.
    pub fn keys_for(&self, caller: &Caller, scope: KeyScope<'_>) -> Result<Vec<KeyRecord>> {
        self.keys_of(self.managed_holder(caller, scope)?)
    }

    /// One key of `scope` that `caller` may manage, or `not_found`.
    pub fn key_for(&self, caller: &Caller, scope: KeyScope<'_>, id: &str) -> Result<KeyRecord> {
        self.key_of(self.managed_holder(caller, scope)?, id)
    }

    /// Deletes one key of `scope` that `caller` may manage. An app key's
    /// admin is checked again under the document's lock.
    pub async fn delete_key_for(
        &self,
        caller: &Caller,
        scope: KeyScope<'_>,
        id: &str,
    ) -> Result<()> {
        match scope {
            KeyScope::App(doc) => self.delete_app_key(caller, doc, id).await,
            KeyScope::Account => {
                let holder = self.managed_holder(caller, scope)?;
                self.delete_key_of(holder, id).await
            }
        }
    }

    /// An HS256 JWT for a key of `scope`, for its owner only.
    pub fn jwt_for(&self, caller: &Caller, scope: KeyScope<'_>, id: &str) -> Result<String> {
        let holder = self.managed_holder(caller, scope)?;
        let key = self.key_of(holder, id)?;
        if caller.user() != Some(&key.owner) {
            return Err(Error::Forbidden(format!(
                "Only the owner of {} can get a JWT for it",
                key.id
            )));
        }
        self.key_jwt(holder, id)
    }
}
