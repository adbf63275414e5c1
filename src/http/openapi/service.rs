//! Operations of the routes in `http/mod.rs` and of this document itself.
//! The functions only carry the attributes (warp routes are closures).
#![allow(dead_code)]

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(paths(health, ready, metrics, openapi_json))]
pub struct Service;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "OK", body = String, content_type = "text/plain")))]
fn health() {}

/// Readiness: storage answers too.
#[utoipa::path(get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "OK", body = String, content_type = "text/plain"),
        (status = 503, description = "Storage does not answer", body = String, content_type = "text/plain"),
    ))]
fn ready() {}

/// Metrics are served on their own listener only (`--metrics-listen`);
/// on the public one the path answers 404.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 404, description = "Not on this listener")))]
fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value)))]
fn openapi_json() {}
