//! The authorization matrix: every WebSocket action and HTTP route × every
//! kind of caller, asserted allowed or denied exactly as SPEC says.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Anonymous,
    Stranger,
    Reader,
    Writer,
    Admin,
    FormerAdmin,
    ApiKey,
    AppJwt,
    AccountJwt,
}
use Role::*;

const SESSIONS: [Role; 6] = [Anonymous, Stranger, Reader, Writer, Admin, FormerAdmin];
const ALL: [Role; 9] = [
    Anonymous,
    Stranger,
    Reader,
    Writer,
    Admin,
    FormerAdmin,
    ApiKey,
    AppJwt,
    AccountJwt,
];

/// How a caller authenticates: a session cookie and/or a bearer token.
struct Actor {
    cookie: Option<String>,
    bearer: Option<String>,
}

struct World {
    server: TestServer,
    admin: User,
    actors: BTreeMap<Role, Actor>,
}

impl World {
    async fn build() -> World {
        let server = TestServer::start().await;
        let admin = server.user("admin").await;
        admin.create_doc("doc").await;
        // A public document for anonymous sockets (they reach "doc" via `d`).
        admin.create_doc("pub").await;
        let mut a = admin.ws("doc").await;
        a.ok(
            "setPermissions",
            Some("pub"),
            json!({"username": "anonymous", "permissions": "r"}),
        )
        .await;
        let mut actors = BTreeMap::new();
        actors.insert(
            Anonymous,
            Actor {
                cookie: None,
                bearer: None,
            },
        );
        for (role, name, level) in [
            (Stranger, "stranger", ""),
            (Reader, "reader", "r"),
            (Writer, "writer", "rw"),
            (FormerAdmin, "former", "arw"),
        ] {
            let user = server.user(name).await;
            if !level.is_empty() {
                a.ok(
                    "setPermissions",
                    None,
                    json!({"username": name, "permissions": level}),
                )
                .await;
            }
            actors.insert(
                role,
                Actor {
                    cookie: Some(user.cookie.clone()),
                    bearer: None,
                },
            );
        }
        actors.insert(
            Admin,
            Actor {
                cookie: Some(admin.cookie.clone()),
                bearer: None,
            },
        );
        server.user("target").await;

        // Credentials for programs, all belonging to the admin.
        let key: Value = admin
            .http
            .post(admin.url("/v1/apps/doc/keys"))
            .json(&json!({"name": "matrix"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (id, secret) = (
            key["key"]["_id"].as_str().unwrap(),
            key["key"]["secret"].as_str().unwrap(),
        );
        actors.insert(
            ApiKey,
            Actor {
                cookie: None,
                bearer: Some(format!("{id}/{secret}")),
            },
        );
        let jwt: Value = admin
            .http
            .get(admin.url(&format!("/v1/apps/doc/keys/{id}/jwt")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        actors.insert(
            AppJwt,
            Actor {
                cookie: None,
                bearer: Some(jwt["jwt"].as_str().unwrap().to_string()),
            },
        );
        let act: Value = admin
            .http
            .post(admin.url("/v1/account/keys"))
            .json(&json!({"name": "matrix"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let act_id = act["key"]["_id"].as_str().unwrap();
        let jwt: Value = admin
            .http
            .get(admin.url(&format!("/v1/account/keys/{act_id}/jwt")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        actors.insert(
            AccountJwt,
            Actor {
                cookie: None,
                bearer: Some(jwt["jwt"].as_str().unwrap().to_string()),
            },
        );

        // The former admin made an invite and an API key, then was demoted.
        let former = &actors[&FormerAdmin];
        let mut f = Ws::connect(&server.base, "doc", former.cookie.as_deref(), None)
            .await
            .unwrap();
        let old_invite = f.ok("createInvite", None, json!({})).await;
        a.ok(
            "setPermissions",
            None,
            json!({"username": "former", "permissions": "r"}),
        )
        .await;
        assert_eq!(
            a.err("checkInvite", None, json!({"key": old_invite["key"]}))
                .await
                .0,
            "invalid_key",
            "the former admin's invite went with the demotion"
        );
        World {
            server,
            admin,
            actors,
        }
    }

    /// A fresh valid invite on "doc", made by the admin.
    async fn fresh_invite(&self) -> String {
        let mut a = self.admin.ws("doc").await;
        a.ok("createInvite", None, json!({})).await["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A WebSocket of `role` from which "doc" is reachable, or `None` when
    /// the role has no session (keys are for HTTP only).
    async fn socket(&self, role: Role) -> Option<Ws> {
        let actor = &self.actors[&role];
        if actor.bearer.is_some() {
            return None;
        }
        let doc = if role == Anonymous { "pub" } else { "doc" };
        Some(
            Ws::connect(&self.server.base, doc, actor.cookie.as_deref(), None)
                .await
                .unwrap(),
        )
    }

    /// Sends an HTTP request as `role`; returns the status.
    async fn http(
        &self,
        role: Role,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> u16 {
        let actor = &self.actors[&role];
        let mut req = self.server.client().request(method, self.server.url(path));
        if let Some(c) = &actor.cookie {
            req = req.header("cookie", format!("keystrate_session={c}"));
        }
        if let Some(b) = &actor.bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap().status().as_u16()
    }
}

/// Outcome of a WebSocket action: allowed, or denied with an authorization
/// code. Any other error fails the test (the matrix must not pass because
/// of a malformed request).
async fn ws_outcome(ws: &mut Ws, wa: &str, options: Value) -> bool {
    let r = ws.request(wa, Some("doc"), options).await;
    match r.get("reply") {
        Some(_) => true,
        None => {
            let code = r["code"].as_str().unwrap();
            assert!(
                ["not_logged_in", "not_admin"].contains(&code),
                "{wa}: unexpected {r}"
            );
            false
        }
    }
}

fn http_allowed(check: &str, status: u16) -> bool {
    match status {
        200..=299 | 303 if !(status == 303 && check.starts_with("GET /doc/")) => true,
        303 | 401 | 403 => false,
        other => panic!("{check}: unexpected status {other}"),
    }
}

#[tokio::test]
async fn every_action_and_route_by_every_caller() {
    let world = World::build().await;
    let logged_in = |r: Role| matches!(r, Stranger | Reader | Writer | Admin | FormerAdmin);
    let admin_only = |r: Role| r == Admin;
    let mut mismatches = Vec::new();
    let mut rows = 0;
    let mut record = |check: &str, role: Role, allowed: bool, expected: bool| {
        rows += 1;
        if allowed != expected {
            mismatches.push(format!(
                "{check} as {role:?}: allowed={allowed}, SPEC says {expected}"
            ));
        }
    };

    // WebSocket actions, for callers with a session (anonymous included).
    for role in SESSIONS {
        let mut ws = world.socket(role).await.unwrap();
        let key = world.fresh_invite().await;
        record(
            "createInvite",
            role,
            ws_outcome(&mut ws, "createInvite", json!({})).await,
            admin_only(role),
        );
        record(
            "checkInvite",
            role,
            ws_outcome(&mut ws, "checkInvite", json!({"key": key})).await,
            logged_in(role),
        );
        record(
            "getInvites",
            role,
            ws_outcome(&mut ws, "getInvites", json!({"all": true})).await,
            admin_only(role),
        );
        let perms = ws.request("getPermissions", Some("doc"), json!({})).await;
        let list = perms["reply"]
            .as_array()
            .expect("everyone may ask for their permissions");
        record(
            "getPermissions (whole list)",
            role,
            list.len() > 1,
            admin_only(role),
        );
        record(
            "removeInvite",
            role,
            ws_outcome(&mut ws, "removeInvite", json!({"key": key})).await,
            admin_only(role),
        );
        let target = json!({"username": "target", "permissions": "r"});
        record(
            "setPermissions",
            role,
            ws_outcome(&mut ws, "setPermissions", target).await,
            admin_only(role),
        );
    }

    // HTTP routes, for every caller.
    use reqwest::Method as M;
    for role in ALL {
        let checks: [(&str, M, &str, Option<Value>, bool); 10] = [
            (
                "GET /doc/",
                M::GET,
                "/doc/",
                None,
                matches!(role, Reader | Writer | Admin | FormerAdmin),
            ),
            (
                "GET /api/documents",
                M::GET,
                "/api/documents",
                None,
                logged_in(role),
            ),
            (
                "POST /invites_api",
                M::POST,
                "/invites_api",
                None,
                matches!(role, ApiKey | AppJwt),
            ),
            (
                "POST /v1/apps/doc/invites",
                M::POST,
                "/v1/apps/doc/invites",
                Some(json!({})),
                matches!(role, Admin | ApiKey | AppJwt | AccountJwt),
            ),
            (
                "GET /v1/apps/doc/invites",
                M::GET,
                "/v1/apps/doc/invites",
                None,
                matches!(role, Admin | ApiKey | AppJwt | AccountJwt),
            ),
            (
                "GET /v1/apps/doc/keys",
                M::GET,
                "/v1/apps/doc/keys",
                None,
                matches!(role, Admin | AccountJwt),
            ),
            (
                "POST /v1/apps/doc/keys",
                M::POST,
                "/v1/apps/doc/keys",
                Some(json!({"name": "k"})),
                matches!(role, Admin | AccountJwt),
            ),
            (
                "GET /v1/account/keys",
                M::GET,
                "/v1/account/keys",
                None,
                logged_in(role) || role == AccountJwt,
            ),
            (
                // Session only: an account key cannot mint more account keys.
                "POST /v1/account/keys",
                M::POST,
                "/v1/account/keys",
                Some(json!({"name": "k"})),
                logged_in(role),
            ),
            (
                "DELETE /api/documents/doc",
                M::DELETE,
                "/api/documents/doc",
                None,
                false,
            ),
        ];
        for (check, method, path, body, expected) in checks {
            if check.starts_with("DELETE") && role == Admin {
                continue; // last, below: it ends the world
            }
            let status = world.http(role, method, path, body).await;
            record(check, role, http_allowed(check, status), expected);
        }
    }

    // Accepting changes the caller's permission, so it runs after the rest.
    for role in SESSIONS {
        let mut ws = world.socket(role).await.unwrap();
        let key = world.fresh_invite().await;
        record(
            "acceptInvite",
            role,
            ws_outcome(&mut ws, "acceptInvite", json!({"key": key})).await,
            logged_in(role),
        );
    }
    let status = world
        .http(Admin, reqwest::Method::DELETE, "/api/documents/doc", None)
        .await;
    record(
        "DELETE /api/documents/doc",
        Admin,
        http_allowed("DELETE", status),
        true,
    );

    assert!(
        mismatches.is_empty(),
        "authorization mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(
        rows,
        6 * 6 + 9 * 10 + 6,
        "every cell of the matrix was checked"
    );
}
