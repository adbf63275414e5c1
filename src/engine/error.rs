//! One error type for every engine operation. Each variant has a stable
//! machine code and the human text of docs/protocol.md, "Errors"; transports only
//! choose how to frame them (a WebSocket reply; an HTTP status, chosen in
//! `http::reply`).

use crate::store::{CommitError, Refusal, StoreError};

/// What a caller was refused: it words `not_logged_in` and `not_admin` for
/// the request's domain, under the same code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Invites,
    Permissions,
    CreateDocument,
    DeleteDocument,
    ApiKeys,
}

impl Task {
    /// Completes "Must be logged in to …".
    fn logged_out(self) -> &'static str {
        match self {
            // Webstrates' own text.
            Task::Invites => "handle invites",
            _ => self.needs_admin(),
        }
    }

    /// Completes "Need admin permissions to …".
    fn needs_admin(self) -> &'static str {
        match self {
            Task::Invites => "manage invites",
            Task::Permissions => "manage permissions",
            Task::CreateDocument => "create a document",
            Task::DeleteDocument => "delete a document",
            Task::ApiKeys => "manage API keys",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Must be logged in to {}", .0.logged_out())]
    NotLoggedIn(Task),
    #[error("Need admin permissions to {}. User only has {perms} on {doc}.", .task.needs_admin())]
    NotAdmin {
        task: Task,
        perms: String,
        doc: String,
    },
    #[error("Invalid invitation key")]
    InvalidKey,
    #[error("Inviter is no longer admin on the webstrate, invitation invalid")]
    InviterNotAdmin,
    #[error("Invitation has been used up")]
    UsedUp,
    #[error("Unable to delete invite")]
    RemoveFailed,
    #[error("{0}")]
    BadRequest(String),
    #[error("No such document {0}")]
    NoSuchDocument(String),
    #[error("A document must keep at least one admin")]
    LastAdmin,
    #[error("Unknown action")]
    UnknownAction,
    #[error("Too many requests")]
    RateLimited,
    #[error("A document can hold at most {max} invites; remove some or let them expire")]
    TooManyInvites { max: usize },
    /// Too many recent failures (e.g. wrong passwords): refused without
    /// trying, for this many more seconds.
    #[error("Too many failed attempts; try again later")]
    Throttled { retry_after_s: u64 },
    /// A bounded resource (password hashing) is saturated.
    #[error("Server busy; try again shortly")]
    Busy,
    /// Authenticated but not allowed (e.g. reading a private document).
    #[error("{0}")]
    Forbidden(String),
    /// Wrong credentials or token.
    #[error("{0}")]
    Unauthorized(String),
    /// Something already exists.
    #[error("{0}")]
    Conflict(String),
    /// A resource other than a document or invite does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request body of a type the route does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Storage failed. Clients read only "Internal error"; the cause is
    /// logged where the error is answered ([`Error::log_internal`]).
    #[error("Internal error")]
    Storage(#[from] StoreError),
    /// A reply could not be encoded.
    #[error("Internal error")]
    Encoding(#[source] serde_json::Error),
    #[error("Internal error")]
    Internal(String),
}

impl Error {
    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotLoggedIn(_) => "not_logged_in",
            Error::NotAdmin { .. } => "not_admin",
            Error::InvalidKey => "invalid_key",
            Error::InviterNotAdmin => "inviter_not_admin",
            Error::UsedUp => "used_up",
            Error::RemoveFailed => "remove_failed",
            Error::BadRequest(_) => "bad_request",
            Error::NoSuchDocument(_) => "no_such_document",
            Error::LastAdmin => "last_admin",
            Error::UnknownAction => "unknown_action",
            Error::RateLimited | Error::Throttled { .. } => "rate_limited",
            Error::Busy => "busy",
            Error::TooManyInvites { .. } => "too_many_invites",
            Error::Forbidden(_) => "forbidden",
            Error::Unauthorized(_) => "unauthorized",
            Error::Conflict(_) => "conflict",
            Error::NotFound(_) => "not_found",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::Storage(_) | Error::Encoding(_) | Error::Internal(_) => "internal",
        }
    }

    /// Seconds the client should wait (`Retry-After`), for errors that
    /// clear by themselves.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Error::Throttled { retry_after_s } => Some(*retry_after_s),
            Error::Busy => Some(1),
            _ => None,
        }
    }

    pub fn bad(msg: impl Into<String>) -> Error {
        Error::BadRequest(msg.into())
    }

    /// The server's own failures (storage, internal): the client is told
    /// only "Internal error".
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Storage(_) | Error::Encoding(_) | Error::Internal(_)
        )
    }

    /// The message with every cause behind it, for logs and operators
    /// (never for clients: causes may name paths).
    pub fn detail(&self) -> String {
        let mut out = match self {
            Error::Internal(what) => format!("internal error: {what}"),
            e => e.to_string(),
        };
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }

    /// Logs an internal failure with its causes. Called once, where the
    /// error becomes a reply; the client's own errors are not logged.
    pub fn log_internal(&self) {
        if self.is_internal() {
            tracing::error!(error = %self.detail(), code = self.code(), "request failed");
        }
    }
}

/// A refused change list, worded for the engine's callers.
impl From<CommitError> for Error {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Store(e) => e.into(),
            CommitError::Refused(Refusal::DocumentExists(id)) => {
                Error::Conflict(format!("Document {id} already exists"))
            }
            CommitError::Refused(Refusal::UserExists(user)) => {
                Error::Conflict(format!("username {} is taken", user.username))
            }
            CommitError::Refused(Refusal::NoSuchUser(user)) => Error::NotFound(format!(
                "no such user {}",
                super::users::display_name(&user)
            )),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
