//! The operator's bypass, stated in one place. The operator is whoever
//! reaches the admin socket (mode 0600: the server's own user and root) or
//! runs the CLI on a stopped store; it calls the engine as
//! [`Caller::Operator`] and goes through the same functions and checks as
//! everyone else. Where a check lets it pass, it calls into this file:
//!
//! - accounts: it creates them (also with registration closed), lists
//!   them, sets a password without the old one, and deletes them;
//! - API keys: it lists and deletes the keys of any existing document
//!   without being one of its admins, and creates a key in the name of an
//!   owner it names, who must be an admin of the document (the key acts as
//!   its owner, so the owner's rights are the key's).
//!
//! It is no user: it holds no level on any document, so it cannot read or
//! change a document, open a socket, or create or accept invites.

use super::keys::KeyRecord;
use super::users::display_name;
use super::{Caller, Engine, Error, Result, Task, User};

impl Caller {
    pub(crate) fn is_operator(&self) -> bool {
        matches!(self, Caller::Operator)
    }

    /// Refuses (403 `forbidden`) everyone but the operator.
    pub(crate) fn require_operator(&self) -> Result<()> {
        if self.is_operator() {
            return Ok(());
        }
        Err(Error::Forbidden(
            "Only the operator may do this (the keystrate CLI on the server's machine)".into(),
        ))
    }
}

impl Engine {
    /// Who may list and delete the API keys of `doc`: its admins, and the
    /// operator on any existing document.
    pub(crate) fn require_key_manager(&self, caller: &Caller, doc: &str) -> Result<()> {
        if !caller.is_operator() {
            return self.require_admin(caller, doc, Task::ApiKeys).map(|_| ());
        }
        if !self.document_exists(doc)? {
            return Err(Error::NoSuchDocument(doc.to_string()));
        }
        Ok(())
    }

    /// The operator creates an app key on `doc` owned by `owner`, through
    /// the same [`Engine::create_app_key`] the owner would call. The owner
    /// is checked here first so that the operator, who named it, reads why
    /// it does not qualify (the engine's `not_admin` text is the fixed
    /// protocol message, written for the caller itself).
    pub async fn create_app_key_for(
        &self,
        caller: &Caller,
        doc: &str,
        name: &str,
        owner: &User,
    ) -> Result<KeyRecord> {
        caller.require_operator()?;
        if !self.document_exists(doc)? {
            return Err(Error::NoSuchDocument(doc.to_string()));
        }
        if !self.user_exists(owner)? {
            return Err(Error::NotFound(format!(
                "no such user {}",
                display_name(owner)
            )));
        }
        let level = self.effective_level(doc, Some(owner))?;
        if !level.is_admin() {
            let has = match level.as_str() {
                "" => "no permission".to_string(),
                p => format!("only \"{p}\""),
            };
            return Err(Error::Forbidden(format!(
                "{} is not an admin of {doc} (has {has}); a key's owner must be an admin of its document",
                display_name(owner)
            )));
        }
        self.create_app_key(&Caller::User(owner.clone()), doc, name)
            .await
    }
}
