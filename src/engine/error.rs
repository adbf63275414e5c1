//! One error type for every engine operation. Each variant has a stable
//! machine code and the exact human text of SPEC section 4; transports only
//! choose how to frame them (a WebSocket reply, an HTTP status).

use crate::store::{CommitError, Refusal, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("Must be logged in to handle invites")]
    NotLoggedIn,
    #[error("Need admin permissions to manage invites. User only has {perms} on {doc}.")]
    NotAdmin { perms: String, doc: String },
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
    #[error("Internal error")]
    Internal(String),
}

impl Error {
    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotLoggedIn => "not_logged_in",
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
            Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status that carries this error on HTTP routes.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotLoggedIn | Error::Unauthorized(_) => 401,
            Error::NotAdmin { .. } | Error::Forbidden(_) => 403,
            Error::NoSuchDocument(_) | Error::NotFound(_) => 404,
            Error::InvalidKey
            | Error::InviterNotAdmin
            | Error::UsedUp
            | Error::RemoveFailed
            | Error::Conflict(_)
            | Error::LastAdmin
            | Error::TooManyInvites { .. } => 409,
            Error::BadRequest(_) | Error::UnknownAction => 400,
            Error::RateLimited | Error::Throttled { .. } => 429,
            Error::Busy => 503,
            Error::UnsupportedMediaType(_) => 415,
            Error::Internal(_) => 500,
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
}

/// No logging here: a storage failure is reported where it becomes a reply.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Internal(e.to_string())
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
