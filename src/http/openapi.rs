//! `GET /openapi.json`: the OpenAPI 3.1 document of every HTTP route.
//!
//! The document is derived, not written: request and response bodies are
//! the types the routes parse and serialise (`#[derive(ToSchema)]` where
//! they are defined), and each route's method, path, parameters and
//! statuses are declared once in `openapi/*.rs`, one file per route group.
//! `tests/it/openapi.rs` checks that every route the router serves is listed
//! here, and CI fuzzes the server against this document with schemathesis
//! (`docs/programs.md`, "The machine-readable contract").
//!
//! This file assembles the parts: the operations, the security schemes,
//! and the error body of each surface, added to every error response so the
//! operations only name their statuses.

mod bodies;
mod directory;
mod people;
mod programs;
mod service;

use super::{reply, App};
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response as HttpResponse;
use warp::Filter;

pub use bodies::{ApiError, SmoochError};

/// Names of the security schemes, as the operations cite them.
pub mod scheme {
    /// The `keystrate_session` cookie set by login and register.
    pub const SESSION: &str = "session";
    /// `Authorization: Bearer <id>/<secret>` or `Bearer <JWT>` of an API key.
    pub const BEARER: &str = "apiKeyBearer";
    /// `Authorization: Basic base64(<id>:<secret>)` of an API key.
    pub const BASIC: &str = "apiKeyBasic";
    /// `?key=<id>/<secret>` (Prosody's `mod_invites_api`).
    pub const KEY_QUERY: &str = "apiKeyQuery";
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keystrate",
        description = "Invites and permissions for collaborative documents. \
            The routes are described in docs/protocol.md, docs/programs.md and docs/directory.md; \
            the WebSocket actions of `/{doc}/ws` in docs/protocol.md. \
            Every `/v1/…` route is also served under `/v1.1/…` (Smooch's newer prefix).",
        license(name = "MIT")
    ),
    components(schemas(ApiError, SmoochError, super::directory::Envelope))
)]
struct ApiDoc;

/// The document as JSON, without `servers` (those depend on the public URL).
pub fn document() -> serde_json::Value {
    use utoipa::Modify;
    let mut document = ApiDoc::openapi();
    for group in [
        service::Service::openapi(),
        people::People::openapi(),
        programs::Programs::openapi(),
        directory::Directory::openapi(),
    ] {
        document.merge(group);
    }
    SecuritySchemes.modify(&mut document);
    let mut json = serde_json::to_value(document).expect("the document serialises");
    add_error_bodies(&mut json);
    json
}

/// `GET /openapi.json`, naming the server's public URL as its one server.
pub fn route(app: App) -> BoxedFilter<(HttpResponse,)> {
    static JSON: OnceLock<Value> = OnceLock::new();
    warp::path!("openapi.json")
        .and(warp::get())
        .map(move || {
            let mut document = JSON.get_or_init(document).clone();
            document["servers"] = json!([{ "url": &*app.public_url }]);
            reply::json(StatusCode::OK, &document)
        })
        .boxed()
}

/// The four ways to authenticate (docs/programs.md).
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key as `<id>/<secret>`, or a JWT of the key (GET …/keys/{keyId}/jwt)",
            ))
            .build();
        let basic = HttpBuilder::new()
            .scheme(HttpAuthScheme::Basic)
            .description(Some("An API key as `<id>:<secret>`"))
            .build();
        for (name, scheme) in [
            (
                scheme::SESSION,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    super::SESSION_COOKIE,
                    "The session cookie set by POST /auth/login and POST /auth/register",
                ))),
            ),
            (scheme::BEARER, SecurityScheme::Http(bearer)),
            (scheme::BASIC, SecurityScheme::Http(basic)),
            (
                scheme::KEY_QUERY,
                SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                    "key",
                    "An app key as `<id>/<secret>` (Prosody's mod_invites_api)",
                ))),
            ),
        ] {
            components.add_security_scheme(name, scheme);
        }
    }
}

/// Gives every error response (status 400 and up) without a body of its own
/// the error body of its surface: Smooch's under `/v1`, the Keys Server
/// envelope on the directory, `{"error","code"}` elsewhere. Every operation
/// that takes a body also answers 413 for one over 64 KiB.
fn add_error_bodies(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let body = json!({"application/json": {"schema": {"$ref": error_schema(path)}}});
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|i| i.values_mut())
        {
            if operation.get("requestBody").is_some() {
                operation["responses"]
                    .as_object_mut()
                    .expect("responses")
                    .entry("413")
                    .or_insert_with(|| json!({"description": "Body larger than 64 KiB"}));
            }
            for (status, response) in operation["responses"].as_object_mut().expect("responses") {
                if status.as_str() >= "400" && response.get("content").is_none() {
                    response["content"] = body.clone();
                }
            }
        }
    }
}

/// The error body of the surface `path` belongs to.
fn error_schema(path: &str) -> String {
    let name = if path.starts_with("/v1/") {
        "SmoochError"
    } else if path == "/identity" || path == "/invite" {
        "DirectoryEnvelope"
    } else {
        "ApiError"
    };
    format!("#/components/schemas/{name}")
}
