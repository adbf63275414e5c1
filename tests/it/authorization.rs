//! The authorization matrix: every WebSocket action and HTTP route × every
//! kind of caller, asserted allowed or denied exactly as SPEC says.

use crate::common::*;
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

/// One state-changing route authorized by the session cookie.
struct Change {
    route: String,
    method: reqwest::Method,
    cookie: String,
    body: Option<Value>,
    /// The status when it passes.
    ok: u16,
}

async fn send_change(
    server: &TestServer,
    change: &Change,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> reqwest::Response {
    let path = change.route.split_once(' ').unwrap().1;
    let mut req = server
        .client()
        .request(change.method.clone(), server.url(path))
        .header("cookie", format!("keystrate_session={}", change.cookie));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some((content_type, body)) = body {
        req = req.header("content-type", content_type).body(body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn cross_site_changes_by_cookie_are_refused_and_programs_pass() {
    let server =
        TestServer::start_with(|s| s.allowed_origins = vec!["https://app.example".into()]).await;
    let alice = server.user("alice").await;
    let carol = server.user("carol").await;
    alice.create_doc("doc").await;
    alice.create_doc("victim").await;
    let json_of = |r: reqwest::Response| async move { r.json::<Value>().await.unwrap() };
    let post = |path: &str, body: Value| alice.http.post(alice.url(path)).json(&body).send();
    let app_key = json_of(
        post("/v1/apps/doc/keys", json!({"name": "a"}))
            .await
            .unwrap(),
    )
    .await;
    let app_key_id = app_key["key"]["_id"].as_str().unwrap().to_string();
    let account_key = json_of(
        post("/v1/account/keys", json!({"name": "b"}))
            .await
            .unwrap(),
    )
    .await;
    let account_key_id = account_key["key"]["_id"].as_str().unwrap();
    let invite = json_of(post("/v1/apps/doc/invites", json!({})).await.unwrap()).await;
    let invite_key = invite["key"].as_str().unwrap();

    use reqwest::Method as M;
    let credentials = |name: &str| Some(json!({"username": name, "password": "correct horse"}));
    let changes = [
        ("POST /auth/login", credentials("alice"), 200),
        ("POST /auth/register", credentials("newbie"), 201),
        ("POST /api/documents", Some(json!({"id": "made"})), 201),
        ("GET /new", None, 303),
        ("POST /v1/account/keys", Some(json!({"name": "k"})), 201),
        ("POST /v1/apps/doc/keys", Some(json!({"name": "k"})), 201),
        (
            "POST /v1/apps/doc/invites",
            Some(json!({"maxAge": 60})),
            201,
        ),
        (
            &format!("DELETE /v1/apps/doc/invites/{invite_key}"),
            None,
            200,
        ),
        (&format!("DELETE /v1/apps/doc/keys/{app_key_id}"), None, 200),
        (
            &format!("DELETE /v1/account/keys/{account_key_id}"),
            None,
            200,
        ),
        ("DELETE /api/documents/victim", None, 204),
        ("POST /auth/logout", None, 204),
    ]
    .map(|(route, body, ok)| Change {
        route: route.to_string(),
        method: route.split(' ').next().unwrap().parse::<M>().unwrap(),
        // Logging out ends the session: carol's, so alice's lives on.
        cookie: if route.ends_with("logout") {
            &carol
        } else {
            &alice
        }
        .cookie
        .clone(),
        body,
        ok,
    });
    let same_site_other_port = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    let foreign = [
        vec![("origin", "https://evil.example")],
        vec![("origin", same_site_other_port.as_str())],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        // The Origin decides when there is one.
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    ];
    let mut mismatches = Vec::new();
    let mut rows = 0;
    for change in &changes {
        let json_body = change
            .body
            .as_ref()
            .map(|b| ("application/json", b.to_string()));
        for headers in &foreign {
            rows += 1;
            let r = send_change(&server, change, headers, json_body.clone()).await;
            let status = r.status().as_u16();
            let cookie_set = r.headers().contains_key("set-cookie");
            // In the surface's own error shape: `{"code"}`, or under `/v1`
            // Smooch's `{"error":{"code"}}`.
            let code = r.json::<Value>().await.ok().map(|v| {
                let smooch = v["error"]["code"].clone();
                if smooch.is_null() {
                    v["code"].clone()
                } else {
                    smooch
                }
            });
            if (status, code.as_ref()) != (403, Some(&json!("cross_site"))) || cookie_set {
                mismatches.push(format!(
                    "{} with {headers:?}: {status} {code:?}",
                    change.route
                ));
            }
        }
        // Bodies a page of another site can send without asking first.
        if let Some(body) = &change.body {
            let form = serde_urlencoded::to_string(
                body.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string().trim_matches('"').to_string()))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let mut kinds = vec![("text/plain", body.to_string())];
            if !change.route.starts_with("POST /auth/") {
                kinds.push(("application/x-www-form-urlencoded", form));
            }
            for body in kinds {
                rows += 1;
                let kind = body.0;
                let status = send_change(&server, change, &[], Some(body)).await.status();
                if status != 415 {
                    mismatches.push(format!("{} with a {kind} body: {status}", change.route));
                }
            }
        }
        // Programs send neither header and pass; refused tries changed
        // nothing (a second creation or deletion would not answer `ok`).
        rows += 1;
        let status = send_change(&server, change, &[], json_body).await.status();
        if status != change.ok {
            mismatches.push(format!("{} without headers: {status}", change.route));
        }
    }
    assert!(
        mismatches.is_empty(),
        "cross-site mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(rows, 12 * 5 + 2 + 4 * 2 + 12, "every cell was checked");

    // Our own origins pass, the public one and --allowed-origin alike.
    let login = &changes[0];
    let body = Some(("application/json", login.body.as_ref().unwrap().to_string()));
    for origin in [server.base.as_str(), "https://app.example"] {
        let r = send_change(&server, login, &[("origin", origin)], body.clone()).await;
        assert_eq!(r.status(), 200, "{origin}");
    }
    // The login and register forms of our own pages still post forms.
    let r = send_change(
        &server,
        login,
        &[("origin", &server.base), ("sec-fetch-site", "same-origin")],
        Some((
            "application/x-www-form-urlencoded",
            "username=alice&password=correct+horse".into(),
        )),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Reads are not changes: a cross-site GET with the cookie is answered.
    let r = alice
        .http
        .get(alice.url("/api/documents"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Key-authorized routes work from any origin, even with a cookie.
    let key = json_of(
        post("/v1/apps/doc/keys", json!({"name": "c"}))
            .await
            .unwrap(),
    )
    .await;
    let key = &key["key"];
    let bearer = format!(
        "Bearer {}/{}",
        key["_id"].as_str().unwrap(),
        key["secret"].as_str().unwrap()
    );
    let evil = ("origin", "https://evil.example");
    let http = server.client();
    let r = http
        .post(server.url("/invites_api"))
        .header(evil.0, evil.1)
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = alice
        .http
        .post(alice.url("/v1/apps/doc/invites"))
        .header(evil.0, evil.1)
        .header("authorization", &bearer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The directory is not a cookie route: its errors keep its envelope.
    let r = http
        .post(server.url("/identity"))
        .header(evil.0, evil.1)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v.get("status").is_some() && v.get("code").is_none(), "{v}");
}
