//! The authorization matrix: every WebSocket action and HTTP route × every
//! kind of caller, asserted allowed or denied as docs/protocol.md and
//! docs/programs.md say. Pages and the key directory are not here: pages
//! answer everyone (a document page redirects to login), and the directory
//! is authorized by signatures, one test per rule in `directory.rs`.

use crate::common::process::login;
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
    /// An app key the former admin made while still admin: it died with
    /// the demotion.
    FormerAdminsKey,
}
use Role::*;

const SESSIONS: [Role; 6] = [Anonymous, Stranger, Reader, Writer, Admin, FormerAdmin];
const ALL: [Role; 10] = [
    Anonymous,
    Stranger,
    Reader,
    Writer,
    Admin,
    FormerAdmin,
    ApiKey,
    AppJwt,
    AccountJwt,
    FormerAdminsKey,
];

/// How a caller authenticates: a session cookie and/or a bearer token.
struct Actor {
    /// The account behind a session, to open a second one.
    name: Option<String>,
    cookie: Option<String>,
    bearer: Option<String>,
}

impl Actor {
    fn session(user: &User) -> Actor {
        Actor {
            name: Some(user.name.clone()),
            cookie: Some(user.cookie.clone()),
            bearer: None,
        }
    }

    fn bearer(token: String) -> Actor {
        Actor {
            name: None,
            cookie: None,
            bearer: Some(token),
        }
    }
}

struct World {
    server: TestServer,
    admin: User,
    actors: BTreeMap<Role, Actor>,
    /// The admin's app key "matrix" (the `ApiKey` role's) and account key.
    app_key_id: String,
    account_key_id: String,
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
        let nobody = Actor {
            name: None,
            cookie: None,
            bearer: None,
        };
        actors.insert(Anonymous, nobody);
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
            actors.insert(role, Actor::session(&user));
        }
        actors.insert(Admin, Actor::session(&admin));
        server.user("target").await;

        // Credentials for programs, all belonging to the admin.
        let (app_key_id, secret) = admin.app_key("doc", "matrix").await;
        actors.insert(ApiKey, Actor::bearer(format!("{app_key_id}/{secret}")));
        let jwt = admin
            .get(&format!("/v1/apps/doc/keys/{app_key_id}/jwt"))
            .value()
            .await;
        actors.insert(AppJwt, Actor::bearer(jwt_of(&jwt)));
        let (account_key_id, _) = admin.account_key("matrix").await;
        let jwt = admin
            .get(&format!("/v1/account/keys/{account_key_id}/jwt"))
            .value()
            .await;
        actors.insert(AccountJwt, Actor::bearer(jwt_of(&jwt)));

        // The former admin made an invite and an app key, then was demoted:
        // both go with the demotion.
        let former = login(&server.base, "former").await;
        let (former_key_id, former_secret) = former.app_key("doc", "before").await;
        let before = format!("{former_key_id}/{former_secret}");
        let mut f = former.ws("doc").await;
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
        actors.insert(FormerAdminsKey, Actor::bearer(before));
        World {
            server,
            admin,
            actors,
            app_key_id,
            account_key_id,
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
        self.http_as(actor.cookie.as_deref(), actor, method, path, body)
            .await
    }

    /// Like [`World::http`], with the session `cookie` in place of the
    /// actor's own (a second session of the same account).
    async fn http_as(
        &self,
        cookie: Option<&str>,
        actor: &Actor,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> u16 {
        let mut req = self.server.client().request(method, self.server.url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("keystrate_session={c}"));
        }
        if let Some(b) = &actor.bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.status_code().await
    }
}

fn jwt_of(answer: &Value) -> String {
    answer["jwt"]
        .as_str()
        .unwrap_or_else(|| panic!("no jwt in {answer}"))
        .to_string()
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

/// Whether `status` is an allowed answer to `check`. A 404 is a denial only
/// on `/v1/account/keys/{id}`: account routes look in the caller's own
/// account, where another account's key id is not found. Anywhere else a
/// 404 (a mistyped route) fails the test.
fn http_allowed(check: &str, status: u16) -> bool {
    match status {
        200..=299 | 303 if !(status == 303 && check.starts_with("GET /doc/")) => true,
        303 | 401 | 403 => false,
        404 if check.contains("/v1/account/keys/") => false,
        other => panic!("{check}: unexpected status {other}"),
    }
}

/// One HTTP cell row: the check's name, the request, and who may.
struct Route {
    check: String,
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
    allowed: fn(Role) -> bool,
}

impl Route {
    fn new(method: &str, path: &str, body: Option<Value>, allowed: fn(Role) -> bool) -> Route {
        Route {
            check: format!("{method} {path}"),
            method: method.parse().unwrap(),
            path: path.to_string(),
            body,
            allowed,
        }
    }
}

fn logged_in(r: Role) -> bool {
    matches!(r, Stranger | Reader | Writer | Admin | FormerAdmin)
}

fn admin_only(r: Role) -> bool {
    r == Admin
}

/// The admin's session, or a key with account scope over the admin.
fn admin_account(r: Role) -> bool {
    matches!(r, Admin | AccountJwt)
}

fn anyone(_: Role) -> bool {
    true
}

/// The routes that leave the world as it was, with `fresh_app_key` and
/// `fresh_account_key` (the admin's) for the two deletions.
fn routes(world: &World, fresh_app_key: &str, fresh_account_key: &str) -> Vec<Route> {
    let (app, act) = (&world.app_key_id, &world.account_key_id);
    vec![
        Route::new("GET", "/doc/", None, |r| {
            matches!(r, Reader | Writer | Admin | FormerAdmin)
        }),
        Route::new("GET", "/api/documents", None, logged_in),
        Route::new("GET", "/invites_api", None, |r| {
            matches!(r, ApiKey | AppJwt)
        }),
        Route::new("POST", "/invites_api", None, |r| {
            matches!(r, ApiKey | AppJwt)
        }),
        Route::new("POST", "/v1/apps/doc/invites", Some(json!({})), |r| {
            matches!(r, Admin | ApiKey | AppJwt | AccountJwt)
        }),
        Route::new("GET", "/v1/apps/doc/invites", None, |r| {
            matches!(r, Admin | ApiKey | AppJwt | AccountJwt)
        }),
        Route::new("GET", "/v1/apps/doc/keys", None, admin_account),
        Route::new(
            "POST",
            "/v1/apps/doc/keys",
            Some(json!({"name": "k"})),
            admin_account,
        ),
        Route::new(
            "GET",
            &format!("/v1/apps/doc/keys/{app}"),
            None,
            admin_account,
        ),
        // Only the key's owner mints its JWT (the admin, by session or by
        // an account key).
        Route::new(
            "GET",
            &format!("/v1/apps/doc/keys/{app}/jwt"),
            None,
            admin_account,
        ),
        Route::new(
            "DELETE",
            &format!("/v1/apps/doc/keys/{fresh_app_key}"),
            None,
            admin_account,
        ),
        Route::new("GET", "/v1/account/keys", None, |r| {
            logged_in(r) || r == AccountJwt
        }),
        // Session only: an account key cannot mint more account keys.
        Route::new(
            "POST",
            "/v1/account/keys",
            Some(json!({"name": "k"})),
            logged_in,
        ),
        Route::new(
            "GET",
            &format!("/v1/account/keys/{act}"),
            None,
            admin_account,
        ),
        // Session only, as creation: no JWT minted by a key.
        Route::new(
            "GET",
            &format!("/v1/account/keys/{act}/jwt"),
            None,
            admin_only,
        ),
        Route::new(
            "DELETE",
            &format!("/v1/account/keys/{fresh_account_key}"),
            None,
            admin_account,
        ),
        Route::new("GET", "/auth/me", None, logged_in),
        // Logging in is open to every caller; it needs only the password.
        Route::new("POST", "/auth/login", Some(credentials("target")), anyone),
        Route::new("DELETE", "/api/documents/doc", None, |_| false),
    ]
}

#[tokio::test]
async fn every_action_and_route_by_every_caller() {
    let world = World::build().await;
    let mut mismatches = Vec::new();
    let mut rows = 0;
    let mut record = |check: &str, role: Role, allowed: bool, expected: bool| {
        rows += 1;
        if allowed != expected {
            mismatches.push(format!(
                "{check} as {role:?}: allowed={allowed}, the docs say {expected}"
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

    // HTTP routes, for every caller; each gets its own keys to delete.
    let mut route_rows = 0;
    for role in ALL {
        let (fresh_app_key, _) = world.admin.app_key("doc", "doomed").await;
        let (fresh_account_key, _) = world.admin.account_key("doomed").await;
        for route in routes(&world, &fresh_app_key, &fresh_account_key) {
            route_rows += 1;
            if route.check.starts_with("DELETE /api/documents") && role == Admin {
                continue; // last, below: it ends the world
            }
            let status = world
                .http(role, route.method, &route.path, route.body)
                .await;
            record(
                &route.check,
                role,
                http_allowed(&route.check, status),
                (route.allowed)(role),
            );
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
    // Logging out needs nothing (it ends the caller's session, if any);
    // callers with a session end a second one, keeping their own.
    for role in ALL {
        let actor = &world.actors[&role];
        let second = match &actor.name {
            Some(name) => Some(login(&world.server.base, name).await.cookie),
            None => None,
        };
        let post = reqwest::Method::POST;
        let status = world
            .http_as(second.as_deref(), actor, post, "/auth/logout", None)
            .await;
        record("POST /auth/logout", role, http_allowed("", status), true);
    }
    // A password change needs a session (and its current password). It
    // renews the caller's session, so the sessions change theirs after the
    // admin's document deletion, the last use of its session.
    let change = json!({"password": PASSWORD, "newPassword": PASSWORD});
    let password_change = |role: Role| {
        let route = "POST /auth/password";
        let change = change.clone();
        let world = &world;
        async move {
            let post = reqwest::Method::POST;
            let status = world.http(role, post, "/auth/password", Some(change)).await;
            (route, http_allowed(route, status))
        }
    };
    for role in ALL.into_iter().filter(|r| world.actors[r].cookie.is_none()) {
        let (check, allowed) = password_change(role).await;
        record(check, role, allowed, false);
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
    for role in ALL.into_iter().filter(|r| world.actors[r].cookie.is_some()) {
        let (check, allowed) = password_change(role).await;
        record(check, role, allowed, true);
    }

    assert!(
        mismatches.is_empty(),
        "authorization mismatches:\n{}",
        mismatches.join("\n")
    );
    let per_role = route_rows / ALL.len();
    assert_eq!(per_role, 19, "the HTTP routes above");
    assert_eq!(
        rows,
        6 * 6 + ALL.len() * per_role + 6 + ALL.len() + ALL.len(),
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
    let (app_key_id, _) = alice.app_key("doc", "a").await;
    let (account_key_id, _) = alice.account_key("b").await;
    let invite = alice.post("/v1/apps/doc/invites", &json!({})).value().await;
    let invite_key = invite["key"].as_str().unwrap();

    use reqwest::Method as M;
    let changes = [
        ("POST /auth/login", Some(credentials("alice")), 200),
        ("POST /auth/register", Some(credentials("newbie")), 201),
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
    let (id, secret) = alice.app_key("doc", "c").await;
    let bearer = format!("Bearer {id}/{secret}");
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

/// Refusals keep their stable codes but say what was refused: managing
/// invites, permissions, API keys, or deleting or creating a document.
#[tokio::test]
async fn refusals_are_worded_for_what_was_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    for (username, provider) in [("bob", "local"), ("anonymous", "")] {
        a.ok(
            "setPermissions",
            None,
            json!({"username": username, "provider": provider, "permissions": "rw"}),
        )
        .await;
    }
    let not_admin = |task: &str| {
        (
            "not_admin".to_string(),
            format!("Need admin permissions to {task}. User only has rw on doc."),
        )
    };

    let mut b = bob.ws("doc").await;
    assert_eq!(
        b.err("createInvite", None, json!({})).await,
        not_admin("manage invites")
    );
    assert_eq!(
        b.err(
            "setPermissions",
            None,
            json!({"username": "bob", "permissions": "arw"})
        )
        .await,
        not_admin("manage permissions")
    );
    let r = bob
        .http
        .delete(bob.url("/api/documents/doc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["code"].as_str().unwrap(),
            body["error"].as_str().unwrap()
        ),
        ("not_admin", not_admin("delete a document").1.as_str())
    );
    let r = bob
        .http
        .post(bob.url("/v1/apps/doc/keys"))
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["description"], not_admin("manage API keys").1);

    // Logged out: the same code, worded for the task.
    let mut anon = Ws::connect(&server.base, "doc", None, None).await.unwrap();
    assert_eq!(
        anon.err(
            "setPermissions",
            None,
            json!({"username": "bob", "permissions": "r"})
        )
        .await,
        (
            "not_logged_in".to_string(),
            "Must be logged in to manage permissions".to_string()
        )
    );
    let r = server
        .client()
        .post(server.url("/api/documents"))
        .json(&json!({"id": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["error"].as_str()),
        (
            Some("not_logged_in"),
            Some("Must be logged in to create a document")
        )
    );
}
