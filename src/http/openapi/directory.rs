//! Operations of the key directory, `http/directory.rs` (docs/directory.md).
//! Every answer is the Keys Server envelope. The functions only carry the
//! attributes (warp routes are closures).
#![allow(dead_code)]

use crate::http::directory::{Envelope, IdAuth, RegisterIdentity};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(
    register_identity,
    resolve_identity,
    unregister_identity,
    register_invite,
    resolve_invite,
    unregister_invite,
))]
pub struct Directory;

/// Binds an identity key to a wallet account with a signed CACAO.
#[utoipa::path(post, path = "/identity", tag = "directory",
    request_body(content((RegisterIdentity = "application/json"))),
    responses(
        (status = 200, description = "Registered", body = Envelope),
        (status = 400, description = "Invalid CACAO or body"),
        (status = 409, description = "The identity key belongs to another account"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many writes from this address"),
    ))]
fn register_identity() {}

/// The CACAO that registered an identity key.
#[utoipa::path(get, path = "/identity", tag = "directory",
    params(("publicKey" = String, Query, description = "The identity key")),
    responses(
        (status = 200, description = "`value.cacao`", body = Envelope),
        (status = 400, description = "Missing or invalid key"),
        (status = 404, description = "Not registered"),
    ))]
fn resolve_identity() {}

/// Revokes an identity key (a did-JWT signed by it).
#[utoipa::path(delete, path = "/identity", tag = "directory",
    request_body(content((IdAuth = "application/json"))),
    responses(
        (status = 200, description = "Revoked", body = Envelope),
        (status = 400, description = "Invalid did-JWT or body"),
        (status = 401, description = "The identity key is not registered to the account"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many writes from this address"),
    ))]
fn unregister_identity() {}

/// Publishes an account's invite key (a did-JWT signed by its identity key).
#[utoipa::path(post, path = "/invite", tag = "directory",
    request_body(content((IdAuth = "application/json"))),
    responses(
        (status = 200, description = "Published", body = Envelope),
        (status = 400, description = "Invalid did-JWT or body"),
        (status = 401, description = "The identity key is not registered to the account"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many writes from this address"),
    ))]
fn register_invite() {}

/// An account's invite key.
#[utoipa::path(get, path = "/invite", tag = "directory",
    params(("account" = String, Query, description = "The account, e.g. `eip155:1:0x…`")),
    responses(
        (status = 200, description = "`value.inviteKey`", body = Envelope),
        (status = 400, description = "Missing or invalid account"),
        (status = 404, description = "No invite key"),
    ))]
fn resolve_invite() {}

/// Withdraws an account's invite key.
#[utoipa::path(delete, path = "/invite", tag = "directory",
    request_body(content((IdAuth = "application/json"))),
    responses(
        (status = 200, description = "Withdrawn", body = Envelope),
        (status = 400, description = "Invalid did-JWT or body"),
        (status = 401, description = "The identity key is not registered to the account"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many writes from this address"),
    ))]
fn unregister_invite() {}
