//! The one error type of the key directory. It already carries what the
//! Keys Server puts on the wire (HTTP status, `name`, `message`), so every
//! transport renders it the same way without a mapping table.

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct DirError {
    pub status: u16,
    pub name: String,
    pub message: String,
}

impl DirError {
    fn new(status: u16, name: &str, message: impl Into<String>) -> DirError {
        DirError {
            status,
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// A did-JWT that fails one of the verification rules.
    pub fn jwt(message: impl Into<String>) -> DirError {
        Self::new(400, "jwt_verification", message)
    }

    /// A `did:key` or `did:pkh` that does not decode as required.
    pub fn did(message: impl Into<String>) -> DirError {
        Self::new(400, "did", message)
    }

    /// A CACAO that fails one of the verification rules.
    pub fn cacao(message: impl Into<String>) -> DirError {
        Self::new(400, "cacao", message)
    }

    /// A request whose shape is wrong (JSON, fields, query parameters).
    pub fn validation(message: impl Into<String>) -> DirError {
        Self::new(400, "validation", message)
    }

    /// A request rejected by the HTTP layer before it reached the directory.
    pub fn http(status: u16, name: &str, message: impl Into<String>) -> DirError {
        Self::new(status, name, message)
    }

    /// The signing identity key is not registered to the claimed account.
    pub fn unauthorized() -> DirError {
        Self::new(
            401,
            "unauthorized",
            "The identity key is not registered to this account",
        )
    }

    /// The identity key already belongs to another account.
    pub fn conflict() -> DirError {
        Self::new(
            409,
            "conflict",
            "The identity key is already registered to another account",
        )
    }

    /// The identity key was revoked after this CACAO was issued.
    pub fn revoked() -> DirError {
        Self::new(
            409,
            "conflict",
            "The identity key was revoked; register it with a CACAO issued after the revocation",
        )
    }

    /// The account already holds [`super::MAX_KEYS_PER_ACCOUNT`] identity keys.
    pub fn too_many_keys() -> DirError {
        Self::new(
            409,
            "conflict",
            format!(
                "The account already has {} identity keys",
                super::MAX_KEYS_PER_ACCOUNT
            ),
        )
    }

    /// The client address used up its directory writes for now.
    pub fn too_many_writes() -> DirError {
        Self::new(
            429,
            "too_many_requests",
            "Too many directory writes from this address; try again in a minute",
        )
    }

    pub fn identity_not_found(id: &str) -> DirError {
        Self::not_found("Identity key", id)
    }

    pub fn invite_not_found(id: &str) -> DirError {
        Self::not_found("Invite key", id)
    }

    /// The Keys Server's not-found wording, kept verbatim for clients that
    /// match on it.
    fn not_found(entity: &str, id: &str) -> DirError {
        Self::new(
            404,
            &format!("{entity} not found"),
            format!("Cannot find {entity} with specified identifier {id}"),
        )
    }
}

impl From<StoreError> for DirError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "key directory storage failure");
        Self::new(500, "storage", "Storage failure")
    }
}
