//! Operations of the routes a person's browser uses: `http/auth.rs`,
//! `http/documents.rs`, `http/pages.rs` and `http/socket.rs`. The
//! functions only carry the attributes (warp routes are closures).
#![allow(dead_code)]

use crate::engine::documents::DocSummary;
use crate::engine::User;
use crate::http::auth::{Credentials, PasswordChange};
use crate::http::documents::NewDocument;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(
    register,
    login,
    logout,
    me,
    change_password,
    login_page,
    create_document,
    list_documents,
    delete_document,
    new_document,
    landing_page,
    static_file,
    document_without_slash,
    document_page,
    open_socket,
))]
pub struct People;

/// Creates an account and logs it in. Refused when a page of another
/// site sends it.
#[utoipa::path(post, path = "/auth/register", tag = "auth",
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "Registered and logged in", body = User,
            headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 400, description = "Invalid username or password"),
        (status = 403, description = "Registration is closed, or a cross-site request"),
        (status = 409, description = "The username is taken"),
        (status = 415, description = "Neither JSON nor a form"),
        (status = 429, description = "Too many attempts"),
        (status = 503, description = "Password hashing is saturated; retry"),
    ))]
fn register() {}

/// Logs in. Refused when a page of another site sends it.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body(content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Logged in", body = User,
            headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 400, description = "Malformed credentials"),
        (status = 401, description = "Wrong username or password"),
        (status = 403, description = "A cross-site request"),
        (status = 415, description = "Neither JSON nor a form"),
        (status = 429, description = "Too many failed attempts"),
        (status = 503, description = "Password hashing is saturated; retry"),
    ))]
fn login() {}

/// Ends the session of the cookie (if any) and clears the cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security((), ("session" = [])),
    responses(
        (status = 204, description = "Logged out",
            headers(("set-cookie" = String, description = "The cleared cookie"))),
        (status = 403, description = "A cross-site request"),
    ))]
fn logout() {}

/// The logged-in user.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    security(("session" = [])),
    responses(
        (status = 200, description = "The user of the session", body = User),
        (status = 401, description = "Not logged in"),
    ))]
fn me() {}

/// Changes the caller's own password: every other session ends, this one
/// gets a fresh cookie.
#[utoipa::path(post, path = "/auth/password", tag = "auth",
    security(("session" = [])),
    request_body(content((PasswordChange = "application/json"))),
    responses(
        (status = 200, description = "Changed", body = User,
            headers(("set-cookie" = String, description = "The new session cookie"))),
        (status = 400, description = "Malformed body or an unacceptable new password"),
        (status = 401, description = "Not logged in, or the current password is wrong"),
        (status = 403, description = "A cross-site request"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many failed attempts"),
        (status = 503, description = "Password hashing is saturated; retry"),
    ))]
fn change_password() {}

/// The login and registration page.
#[utoipa::path(get, path = "/auth/login", tag = "pages",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
fn login_page() {}

/// Creates a document owned by the caller (admin).
#[utoipa::path(post, path = "/api/documents", tag = "documents",
    security(("session" = [])),
    request_body(content((NewDocument = "application/json"))),
    responses(
        (status = 201, description = "Created; the caller holds `arw`", body = DocSummary),
        (status = 400, description = "Invalid or reserved id, or a malformed body"),
        (status = 401, description = "Not logged in"),
        (status = 403, description = "A cross-site request"),
        (status = 409, description = "The id is taken"),
        (status = 415, description = "Not JSON"),
        (status = 429, description = "Too many documents created"),
    ))]
fn create_document() {}

/// The documents the caller has an explicit permission on.
#[utoipa::path(get, path = "/api/documents", tag = "documents",
    security(("session" = [])),
    responses(
        (status = 200, description = "The caller's documents", body = Vec<DocSummary>),
        (status = 401, description = "Not logged in"),
    ))]
fn list_documents() {}

/// Deletes a document with its permissions and invites (admins only).
#[utoipa::path(delete, path = "/api/documents/{doc}", tag = "documents",
    security(("session" = [])),
    params(("doc" = String, Path, description = "Document id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid id"),
        (status = 401, description = "Not logged in"),
        (status = 403, description = "Not an admin of the document, or a cross-site request"),
        (status = 404, description = "No such document"),
    ))]
fn delete_document() {}

/// Creates a document and sends the browser to it (to the login page when
/// logged out). Refused when a page of another site sends it.
#[utoipa::path(get, path = "/new", tag = "pages",
    security((), ("session" = [])),
    responses(
        (status = 303, description = "To the new document, or to the login page",
            headers(("location" = String))),
        (status = 403, description = "A cross-site request"),
        (status = 429, description = "Too many documents created"),
    ))]
fn new_document() {}

/// The landing page.
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
fn landing_page() {}

/// The pages' scripts and style sheet.
#[utoipa::path(get, path = "/static/{file}", tag = "pages",
    params(("file" = String, Path, description = "File name, e.g. `keystrate.js`")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "No such file", body = String, content_type = "text/plain"),
    ))]
fn static_file() {}

/// A document's address without the trailing slash.
#[utoipa::path(get, path = "/{doc}", tag = "pages",
    params(("doc" = String, Path, description = "Document id")),
    responses((status = 308, description = "To `/{doc}/`, query kept",
        headers(("location" = String)))))]
fn document_without_slash() {}

/// The document page. With `?acceptInvite=<key>` a logged-in caller
/// accepts the invite and is sent to the page without the parameter.
#[utoipa::path(get, path = "/{doc}/", tag = "pages",
    security((), ("session" = [])),
    params(
        ("doc" = String, Path, description = "Document id"),
        ("acceptInvite" = Option<String>, Query, description = "An invite key to accept"),
    ),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 303, description = "To the login page (logged out), or to the page once the invite is accepted",
            headers(("location" = String))),
        (status = 400, description = "The document cannot be created", body = String, content_type = "text/html"),
        (status = 403, description = "No access", body = String, content_type = "text/html"),
        (status = 404, description = "No such document", body = String, content_type = "text/html"),
        (status = 409, description = "The invite cannot be used", body = String, content_type = "text/html"),
        (status = 429, description = "Too many failed invite keys", body = String, content_type = "text/html"),
    ))]
fn document_page() {}

/// The document's WebSocket (actions in docs/protocol.md). Only upgrade
/// requests reach it; the Origin must be one of the server's.
#[utoipa::path(get, path = "/{doc}/ws", tag = "pages",
    security((), ("session" = [])),
    params(
        ("doc" = String, Path, description = "Document id"),
        ("upgrade" = String, Header, description = "`websocket`"),
        ("sec-websocket-version" = String, Header, description = "`13`"),
        ("sec-websocket-key" = String, Header),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 403, description = "Origin not allowed, or no read access", body = String, content_type = "text/plain"),
        (status = 404, description = "No such document", body = String, content_type = "text/plain"),
        (status = 429, description = "Too many sockets of one caller", body = String, content_type = "text/plain"),
    ))]
fn open_socket() {}
