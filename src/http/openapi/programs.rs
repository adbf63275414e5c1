//! Operations of the routes programs call: `http/invites_api.rs` and the
//! dispatch table of `http/apps.rs` (docs/programs.md). The functions only
//! carry the attributes (warp routes are closures, `/v1` one table).
#![allow(dead_code)]

use super::bodies::{
    AppKeyPath, AppPath, Done, InviteListQuery, InviteOptions, InvitesApiOptions, InvitesPage,
    JwtAnswer, KeyAnswer, KeysAnswer,
};
use crate::engine::invites::Invite;
use crate::http::apps::NewKey;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(
    invites_api_preflight,
    invites_api_get,
    invites_api_post,
    create_app_key,
    list_app_keys,
    get_app_key,
    delete_app_key,
    app_key_jwt,
    create_account_key,
    list_account_keys,
    get_account_key,
    delete_account_key,
    account_key_jwt,
    create_app_invite,
    list_app_invites,
    remove_app_invite,
))]
pub struct Programs;

/// CORS preflight: any origin may call `/invites_api` with a key.
#[utoipa::path(options, path = "/invites_api", tag = "invites_api",
    responses((status = 204, description = "Allowed methods and headers")))]
fn invites_api_preflight() {}

/// Creates an invite to the app key's document (Prosody's
/// `mod_invites_api`); the options come from the query string.
#[utoipa::path(get, path = "/invites_api", tag = "invites_api",
    security(("apiKeyQuery" = []), ("apiKeyBearer" = []), ("apiKeyBasic" = [])),
    params(InvitesApiOptions),
    responses(
        (status = 201, description = "The invite; `Location` is its link", body = Invite,
            headers(("location" = String))),
        (status = 303, description = "To the invite link (`redirect`)", headers(("location" = String))),
        (status = 400, description = "Invalid options"),
        (status = 401, description = "No app key, or an unknown or revoked one"),
        (status = 403, description = "The key's owner is no longer an admin of the document"),
        (status = 409, description = "The document has too many live invites"),
        (status = 429, description = "Too many requests"),
    ))]
fn invites_api_get() {}

/// As the GET, with the options also in a JSON or form body.
#[utoipa::path(post, path = "/invites_api", tag = "invites_api",
    security(("apiKeyQuery" = []), ("apiKeyBearer" = []), ("apiKeyBasic" = [])),
    params(InvitesApiOptions),
    request_body(content(
        (InvitesApiOptions = "application/json"),
        (InvitesApiOptions = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The invite; `Location` is its link", body = Invite,
            headers(("location" = String))),
        (status = 303, description = "To the invite link (`redirect`)", headers(("location" = String))),
        (status = 400, description = "Invalid options"),
        (status = 401, description = "No app key, or an unknown or revoked one"),
        (status = 403, description = "The key's owner is no longer an admin of the document"),
        (status = 409, description = "The document has too many live invites"),
        (status = 415, description = "Neither JSON nor a form"),
        (status = 429, description = "Too many requests"),
    ))]
fn invites_api_post() {}

/// Creates an app key of the document (admins only); the answer is the
/// only time the secret is shown in full to a program.
#[utoipa::path(post, path = "/v1/apps/{appId}/keys", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppPath),
    request_body(content((NewKey = "application/json"))),
    responses(
        (status = 201, description = "The new key", body = KeyAnswer),
        (status = 400, description = "Malformed body"),
        (status = 401, description = "No account scope (an app key is not enough)"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document"),
        (status = 409, description = "Too many keys"),
        (status = 415, description = "Not JSON"),
    ))]
fn create_app_key() {}

/// The document's app keys (admins only); secrets only of the caller's own.
#[utoipa::path(get, path = "/v1/apps/{appId}/keys", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppPath),
    responses(
        (status = 200, description = "The keys", body = KeysAnswer),
        (status = 401, description = "No account scope"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document"),
    ))]
fn list_app_keys() {}

/// One app key of the document (admins only).
#[utoipa::path(get, path = "/v1/apps/{appId}/keys/{keyId}", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppKeyPath),
    responses(
        (status = 200, description = "The key", body = KeyAnswer),
        (status = 401, description = "No account scope"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document or key"),
    ))]
fn get_app_key() {}

/// Revokes an app key (admins only).
#[utoipa::path(delete, path = "/v1/apps/{appId}/keys/{keyId}", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppKeyPath),
    responses(
        (status = 200, description = "Revoked", body = Done),
        (status = 401, description = "No account scope"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document or key"),
    ))]
fn delete_app_key() {}

/// A JWT of the app key (its owner only).
#[utoipa::path(get, path = "/v1/apps/{appId}/keys/{keyId}/jwt", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppKeyPath),
    responses(
        (status = 200, description = "The JWT", body = JwtAnswer),
        (status = 401, description = "No account scope"),
        (status = 403, description = "Not the key's owner, or not an admin"),
        (status = 404, description = "No such document or key"),
    ))]
fn app_key_jwt() {}

/// Creates an account key (a logged-in session only: a key cannot mint
/// keys).
#[utoipa::path(post, path = "/v1/account/keys", tag = "keys",
    security(("session" = [])),
    request_body(content((NewKey = "application/json"))),
    responses(
        (status = 201, description = "The new key", body = KeyAnswer),
        (status = 400, description = "Malformed body"),
        (status = 401, description = "No logged-in session"),
        (status = 409, description = "Too many keys"),
        (status = 415, description = "Not JSON"),
    ))]
fn create_account_key() {}

/// The caller's account keys.
#[utoipa::path(get, path = "/v1/account/keys", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    responses(
        (status = 200, description = "The keys", body = KeysAnswer),
        (status = 401, description = "No account scope"),
    ))]
fn list_account_keys() {}

/// One of the caller's account keys.
#[utoipa::path(get, path = "/v1/account/keys/{keyId}", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(("keyId" = String, Path, description = "Key id (`act_…`)")),
    responses(
        (status = 200, description = "The key", body = KeyAnswer),
        (status = 401, description = "No account scope"),
        (status = 404, description = "No such key"),
    ))]
fn get_account_key() {}

/// Revokes one of the caller's account keys.
#[utoipa::path(delete, path = "/v1/account/keys/{keyId}", tag = "keys",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(("keyId" = String, Path, description = "Key id (`act_…`)")),
    responses(
        (status = 200, description = "Revoked", body = Done),
        (status = 401, description = "No account scope"),
        (status = 404, description = "No such key"),
    ))]
fn delete_account_key() {}

/// A JWT of an account key (a logged-in session only).
#[utoipa::path(get, path = "/v1/account/keys/{keyId}/jwt", tag = "keys",
    security(("session" = [])),
    params(("keyId" = String, Path, description = "Key id (`act_…`)")),
    responses(
        (status = 200, description = "The JWT", body = JwtAnswer),
        (status = 401, description = "No logged-in session"),
        (status = 404, description = "No such key"),
    ))]
fn account_key_jwt() {}

/// Creates an invite to the document: an app key of it, or account scope
/// of an admin.
#[utoipa::path(post, path = "/v1/apps/{appId}/invites", tag = "invites",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppPath),
    request_body(content((InviteOptions = "application/json"))),
    responses(
        (status = 201, description = "The invite", body = Invite),
        (status = 400, description = "Invalid options"),
        (status = 401, description = "No credentials, or a key of another document"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document"),
        (status = 409, description = "The document has too many live invites"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many requests"),
    ))]
fn create_app_invite() {}

/// The document's invites, a page at a time.
#[utoipa::path(get, path = "/v1/apps/{appId}/invites", tag = "invites",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppPath, InviteListQuery),
    responses(
        (status = 200, description = "One page", body = InvitesPage),
        (status = 400, description = "Invalid options"),
        (status = 401, description = "No credentials, or a key of another document"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document"),
    ))]
fn list_app_invites() {}

/// Removes an invite of the document.
#[utoipa::path(delete, path = "/v1/apps/{appId}/invites/{key}", tag = "invites",
    security(("session" = []), ("apiKeyBasic" = []), ("apiKeyBearer" = [])),
    params(AppPath, ("key" = String, Path, description = "The invite key")),
    responses(
        (status = 200, description = "Removed", body = Done),
        (status = 401, description = "No credentials, or a key of another document"),
        (status = 403, description = "Not an admin of the document"),
        (status = 404, description = "No such document or invite"),
    ))]
fn remove_app_invite() {}
