//! `/openapi.json` (docs/programs.md, "The machine-readable contract"): it
//! lists every route the router serves, and schemathesis, fuzzing the real
//! server against it, finds no 5xx and no answer off the schema.

use crate::common::{ledger, skip, TestServer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The document id the document's `appId` examples name: the fuzzer's
/// own app, so its examples reach past the permission checks.
const EXAMPLE_APP: &str = "notes";

async fn document(server: &TestServer) -> Value {
    let r = reqwest::get(server.url("/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// The document names the OpenAPI version, this server, the four ways to
/// authenticate, and an error body for every error answer.
#[tokio::test]
async fn the_document_is_openapi_3_1_with_security_and_error_bodies() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], server.base.as_str());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "keystrate_session");
    assert_eq!(schemes["apiKeyBearer"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyBasic"]["scheme"], "basic");
    assert_eq!(schemes["apiKeyQuery"]["in"], "query");
    for (path, method, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.as_str() >= "400" {
                assert!(
                    response["content"].is_object(),
                    "{method} {path} {status} has no body"
                );
            }
        }
    }
    let smooch = &doc["paths"]["/v1/account/keys"]["get"]["responses"]["401"];
    assert_eq!(
        smooch["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SmoochError"
    );
}

/// Every `(method, path)` the routes in `src/http/` declare is an operation
/// of the document, and every path of the document is one they declare.
/// The routes are read from the source: `warp::path!(…)` with the method
/// filters of its chain, and the `/v1` dispatch table of `apps.rs`.
#[tokio::test]
async fn the_document_lists_every_route_the_router_serves() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, method, _) in operations(&doc) {
        documented
            .entry(normalize(&path))
            .or_default()
            .insert(method.to_uppercase());
    }
    let served = served_routes();
    assert!(
        served.len() > 20,
        "the scan found too few routes: {served:?}"
    );
    for (path, methods) in &served {
        let listed = documented
            .get(path)
            .unwrap_or_else(|| panic!("{path} is served but not in /openapi.json"));
        for method in methods {
            assert!(
                listed.contains(method),
                "{method} {path} is served but not in /openapi.json"
            );
        }
    }
    for path in documented.keys() {
        assert!(
            served.contains_key(path),
            "{path} is in /openapi.json but no route serves it"
        );
    }
}

/// schemathesis generates requests for every operation (valid and invalid
/// ones) with a session, an app key and an account key, and checks that no
/// answer is a 5xx and that every answer matches its schema.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_schema() {
    let installed = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        skip(
            "schemathesis_finds_no_server_error_and_no_answer_off_the_schema",
            "schemathesis is not installed (pip install schemathesis==4.32.5)",
        );
        return;
    }
    // Directory writes past the per-address budget would all be 429s,
    // leaving the logic behind them unfuzzed.
    let server = TestServer::start_with(|s| s.directory_writes_per_minute = 100_000).await;
    let fuzzer = server.user("fuzzer").await;
    fuzzer.create_doc(EXAMPLE_APP).await;
    let app_key = new_key(&fuzzer, &format!("/v1/apps/{EXAMPLE_APP}/keys")).await;
    let account_key = new_key(&fuzzer, "/v1/account/keys").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "color = false\n\
             [auth.openapi.session]\napi_key = {cookie}\n\
             [auth.openapi.apiKeyBearer]\nbearer = {app}\n\
             [auth.openapi.apiKeyQuery]\napi_key = {app}\n\
             [auth.openapi.apiKeyBasic]\nusername = {id}\npassword = {secret}\n",
            cookie = json!(fuzzer.cookie),
            app = json!(format!("{}/{}", app_key.0, app_key.1)),
            id = json!(account_key.0),
            secret = json!(account_key.1),
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--seed", "20261203", "--max-examples", "60"])
        .args(["--workers", "2", "--request-timeout", "20"])
        .args(["--suppress-health-check", "all"])
        // The WebSocket needs a WebSocket client (fuzz/ covers its frames);
        // logging out would end the session the other operations use.
        .args(["--exclude-operation-id", "open_socket"])
        .args(["--exclude-operation-id", "logout"])
        .args(["--report-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .await
        .expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{report}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
}

/// A new key from `route`: its id and secret (recorded in the ledger).
async fn new_key(user: &crate::common::User, route: &str) -> (String, String) {
    let r = user
        .http
        .post(user.url(route))
        .json(&json!({"name": "fuzz"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{route}");
    let body: Value = r.json().await.unwrap();
    ledger::record_in(&body);
    let key = &body["key"];
    (
        key["_id"].as_str().unwrap().to_string(),
        key["secret"].as_str().unwrap().to_string(),
    )
}

/// `(path, method, operation)` of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    out
}

/// A path with its parameters unnamed (`{}`) and no trailing slash, as the
/// source scan sees it.
fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    if out.len() > 1 {
        out.trim_end_matches('/').to_string()
    } else {
        out
    }
}

/// The routes declared in `src/http/*.rs`: path → methods (empty when the
/// method filter lives elsewhere, e.g. in a helper).
fn served_routes() -> BTreeMap<String, BTreeSet<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).unwrap();
            scan_path_macros(&source, &mut routes);
            scan_dispatch_table(&source, &mut routes);
        }
    }
    routes
}

/// `warp::path!("a" / String / ..)` → `/a/{}`, and `= warp::path::end()`
/// → `/`, each with the methods filtered before its handler.
fn scan_path_macros(source: &str, routes: &mut BTreeMap<String, BTreeSet<String>>) {
    for (start, _) in source.match_indices("warp::path!(") {
        let args_start = start + "warp::path!(".len();
        let args_end = args_start + source[args_start..].find(')').unwrap();
        let segments: Vec<String> = source[args_start..args_end]
            .split('/')
            .map(str::trim)
            .filter(|s| *s != "..")
            .map(segment)
            .collect();
        let path = format!("/{}", segments.join("/"));
        let methods = chain_methods(&source[args_end..]);
        routes.entry(path).or_default().extend(methods);
    }
    for (start, _) in source.match_indices("= warp::path::end()") {
        let methods = chain_methods(&source[start..]);
        routes.entry("/".into()).or_default().extend(methods);
    }
}

/// A path segment of the source: a string literal is itself, anything
/// else (`String`, a binding) a parameter.
fn segment(source: &str) -> String {
    match source.strip_prefix('"') {
        Some(literal) => literal.trim_end_matches('"').to_string(),
        None => "{}".to_string(),
    }
}

/// The `warp::get()`, `warp::post()`, … of a filter chain, up to its
/// handler (`.map(`, `.then(`, `.and_then(`) or the end of the statement.
fn chain_methods(chain: &str) -> BTreeSet<String> {
    let end = [".map(", ".then(", ".and_then(", ";"]
        .iter()
        .filter_map(|stop| chain.find(stop))
        .min()
        .unwrap_or(chain.len());
    ["get", "post", "put", "delete", "options"]
        .into_iter()
        .filter(|m| chain[..end].contains(&format!("warp::{m}()")))
        .map(str::to_uppercase)
        .collect()
}

/// The arms of `apps.rs`'s dispatch: `("POST", ["apps", doc, "keys"])` →
/// POST `/v1/apps/{}/keys`.
fn scan_dispatch_table(source: &str, routes: &mut BTreeMap<String, BTreeSet<String>>) {
    for (start, _) in source.match_indices("(\"") {
        let rest = &source[start + 2..];
        let Some(quote) = rest.find('"') else {
            continue;
        };
        let method = &rest[..quote];
        let Some(tail) = rest[quote..].strip_prefix("\", [") else {
            continue;
        };
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            continue;
        }
        let segments: Vec<String> = tail[..tail.find(']').unwrap()]
            .split(',')
            .map(str::trim)
            .map(segment)
            .collect();
        let path = format!("/v1/{}", segments.join("/"));
        routes.entry(path).or_default().insert(method.to_string());
    }
}
