//! The vocabulary that the engine, the store and export share: who a user
//! is and what a permission level is. It sits below both so that the store
//! can speak in the product's terms without importing the engine.

mod level;

pub use level::Level;
use serde::{Deserialize, Serialize};

/// A user as it appears on the wire: `{username, provider}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub username: String,
    pub provider: String,
}

impl User {
    pub fn local(username: &str) -> User {
        User {
            username: username.to_string(),
            provider: "local".to_string(),
        }
    }

    /// The pseudo-user that carries a document's anonymous entry.
    pub fn anonymous() -> User {
        User {
            username: "anonymous".to_string(),
            provider: String::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username == "anonymous" && self.provider.is_empty()
    }

    /// `username:provider`, the id a user is stored under.
    pub fn id(&self) -> String {
        format!("{}:{}", self.username, self.provider)
    }

    /// The user stored under `id` (`username:provider`).
    pub fn from_id(id: &str) -> Option<User> {
        let (username, provider) = id.split_once(':')?;
        Some(User {
            username: username.to_string(),
            provider: provider.to_string(),
        })
    }
}
