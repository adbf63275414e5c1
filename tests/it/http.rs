//! HTTP routes (docs/protocol.md): accounts, documents, the document
//! page's access rules, invite acceptance by URL, limits.

use crate::common::*;
use serde_json::{json, Value};

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn register_login_logout_me() {
    let server = TestServer::start().await;
    let http = server.client();
    let r = http
        .post(server.url("/auth/register"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["keystrate_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http has no Secure flag");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("keystrate_session=");
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"username": "alice", "provider": "local"})
    );
    let me: Value = http.get(server.url("/auth/me")).value().await;
    assert_eq!(me, json!({"username": "alice", "provider": "local"}));
    // Only a digest of the token is stored.
    let store = server.engine().store();
    assert_eq!(store.census().sessions, 1);
    let id = keystrate::store::SessionId::of(token);
    let stored = store
        .session(&id)
        .unwrap()
        .expect("stored under the digest");
    assert!(!format!("{stored:?}").contains(token));

    let r = http.post(server.url("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(store.census().sessions, 0, "session deleted server-side");
    // The old token no longer works even if replayed.
    let replay = server
        .client()
        .get(server.url("/auth/me"))
        .header("cookie", format!("keystrate_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);

    // Login with a form body; wrong password 401.
    let r = http
        .post(server.url("/auth/login"))
        .form(&[("username", "alice"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (user, pw) in [("alice", "wrong password"), ("nobody", "correct horse")] {
        let r = server
            .client()
            .post(server.url("/auth/login"))
            .json(&json!({"username": user, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{user}");
    }
    // Passwords are stored as Argon2id hashes only.
    let user = server
        .engine()
        .store()
        .user(&keystrate::engine::User::local("alice"))
        .unwrap()
        .unwrap();
    let user = format!("{user:?}");
    assert!(user.contains("$argon2id$") && !user.contains("correct horse"));
}

#[tokio::test]
async fn registration_validation() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let cases = [
        (
            json!({"username": "alice", "password": "correct horse"}),
            409,
        ),
        (
            json!({"username": "anonymous", "password": "correct horse"}),
            400,
        ),
        (json!({"username": "", "password": "correct horse"}), 400),
        (json!({"username": "a b", "password": "correct horse"}), 400),
        (
            json!({"username": "x".repeat(65), "password": "correct horse"}),
            400,
        ),
        (json!({"username": "bob", "password": "short"}), 400),
        (
            json!({"username": "bob", "password": "p".repeat(1025)}),
            400,
        ),
        (json!({"username": "bob"}), 400),
    ];
    for (body, status) in cases {
        let r = server
            .client()
            .post(server.url("/auth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        let err: Value = r.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().len() > 5, "{err}");
    }
    server.user("a.B_c-9").await;
    assert_eq!(server.engine().store().census().users, 2);
}

#[tokio::test]
async fn closed_registration() {
    let server = TestServer::start_with(|s| s.no_open_registration = true).await;
    let r = server
        .client()
        .post(server.url("/auth/register"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(server.engine().store().census().users, 0);
}

#[tokio::test]
async fn documents_api() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let r = alice
        .http
        .post(alice.url("/api/documents"))
        .json(&json!({"id": "notes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": "notes", "permissions": "arw"})
    );
    let r = alice
        .http
        .post(alice.url("/api/documents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "no body: random id");
    let random: Value = r.json().await.unwrap();
    for (body, status) in [
        (json!({"id": "notes"}), 409),
        (json!({"id": "-bad"}), 400),
        (json!({"id": "a".repeat(65)}), 400),
        (json!({"id": "favicon.ico"}), 400),
        (json!({"id": "has space"}), 400),
        (json!({"name": "x"}), 400),
    ] {
        let r = alice
            .http
            .post(alice.url("/api/documents"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
    }
    // Every name the server's own routes use is refused as a document id.
    for reserved in [
        "new",
        "auth",
        "api",
        "v1",
        "static",
        "ws",
        "invite",
        "identity",
        "invites_api",
        "health",
        "ready",
        "metrics",
    ] {
        let r = alice
            .http
            .post(alice.url("/api/documents"))
            .json(&json!({"id": reserved}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{reserved} is reserved");
    }
    let anon = server
        .client()
        .post(server.url("/api/documents"))
        .json(&json!({"id": "x1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let list: Value = alice.http.get(alice.url("/api/documents")).value().await;
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec!["notes", random["id"].as_str().unwrap()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(list[0]["permissions"], "arw");
    let list: Value = bob.http.get(bob.url("/api/documents")).value().await;
    assert_eq!(list, json!([]));
    // GET /new creates a document and redirects to it.
    let r = alice.http.get(alice.url("/new")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // A fresh 12-hex id, and the document exists, owned by alice.
    let loc = location(&r);
    let id = loc
        .strip_prefix('/')
        .and_then(|l| l.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{loc}"));
    assert!(
        id.len() == 12
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{loc}"
    );
    let mut ws = alice.ws(id).await;
    let perms = ws.ok("getPermissions", None, json!({})).await;
    assert_eq!(perms[0]["username"], "alice", "{perms}");
    assert_eq!(perms[0]["permissions"], "arw", "{perms}");
    let r = server
        .client()
        .get(server.url("/new"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/auth/login?next=%2Fnew".to_string())
    );
}

#[tokio::test]
async fn deleting_a_document_drops_everything() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("gone").await;
    let mut a = alice.ws("gone").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "permissions": "rw"}),
    )
    .await;
    a.ok("createInvite", None, json!({})).await;
    a.ok("createInvite", None, json!({"maxAge": 60})).await;
    let r = bob
        .http
        .delete(bob.url("/api/documents/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = alice
        .http
        .delete(alice.url("/api/documents/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let census = server.engine().store().census();
    for (name, count) in [
        ("documents", census.documents),
        ("permissions", census.permissions),
        ("user documents", census.user_documents),
        ("invites", census.invites),
        ("invite expiries", census.invite_expiries),
    ] {
        assert_eq!(count, 0, "{name} still stored");
    }
    // Its sockets were told and closed.
    assert_eq!(a.event("permissionsChanged").await["permissions"], "");
    let (code, reason) = close_frame(&mut a.socket, std::time::Duration::from_secs(30)).await;
    assert_eq!(
        (u16::from(code), reason.as_str()),
        (1000, "document deleted")
    );
    let r = alice
        .http
        .delete(alice.url("/api/documents/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn document_page_access_rules() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let anon = server.client();
    // Trailing slash, query kept.
    let r = anon.get(server.url("/doc?x=1&y=2")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (308, "/doc/?x=1&y=2".to_string())
    );
    let r = alice.http.get(alice.url("/doc/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("/static/keystrate.js"));
    let r = bob.http.get(bob.url("/doc/")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = anon.get(server.url("/doc/")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/auth/login?next=%2Fdoc%2F".to_string())
    );
    // Public documents are readable anonymously.
    let mut a = alice.ws("doc").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "anonymous", "permissions": "r"}),
    )
    .await;
    assert_eq!(
        anon.get(server.url("/doc/")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        bob.http
            .get(bob.url("/doc/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Visiting a missing document creates it for a logged-in user.
    let r = bob.http.get(bob.url("/fresh-doc/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut b = bob.ws("fresh-doc").await;
    assert_eq!(b.hello["permissions"], "arw");
    let r = anon.get(server.url("/other-doc/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(!server.engine().document_exists("other-doc").unwrap());
    let r = alice
        .http
        .get(alice.url("/bad%20id/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    b.ok("getPermissions", None, json!({})).await;
}

#[tokio::test]
async fn no_create_on_visit() {
    let server = TestServer::start_with(|s| s.no_create_on_visit = true).await;
    let alice = server.user("alice").await;
    let r = alice.http.get(alice.url("/fresh/")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("No such document fresh"));
    assert!(!server.engine().document_exists("fresh").unwrap());
}

#[tokio::test]
async fn accept_invite_by_url() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let inv = a
        .ok("createInvite", None, json!({"permissions": "rw"}))
        .await;
    let key = inv["key"].as_str().unwrap();
    let link = format!("/doc/?acceptInvite={key}&view=1");
    // Logged out: to the login page with this URL as `next`.
    let anon = server.client();
    let r = anon.get(server.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let login = location(&r);
    let expected_next = format!("/auth/login?next=%2Fdoc%2F%3FacceptInvite%3D{key}%26view%3D1");
    assert_eq!(login, expected_next);
    // Logged in: accepted, then to the document without the parameter.
    let r = bob.http.get(bob.url(&link)).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/doc/?view=1".to_string())
    );
    let mut b = bob.ws("doc").await;
    assert_eq!(b.hello["permissions"], "rw");
    assert_eq!(
        bob.http
            .get(bob.url("/doc/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Invalid: 409 with the error text.
    let r = bob
        .http
        .get(bob.url(&format!("/doc/?acceptInvite={}", "0".repeat(64))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Error: Invalid invitation key. Ask whoever sent you the link for a new one."));
    b.ok("getPermissions", None, json!({})).await;
}

#[tokio::test]
async fn one_users_bad_invite_links_do_not_lock_out_others_behind_the_same_address() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let mut a = alice.ws("doc").await;
    let good = a.ok("createInvite", None, json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    // Every client here comes from 127.0.0.1, as behind a proxy or a NAT.
    let mallory = server.user("mallory").await;
    let mut tries = Vec::new();
    for i in 0..25 {
        let r = mallory
            .http
            .get(mallory.url(&format!("/doc/?acceptInvite={i:064x}")))
            .send()
            .await
            .unwrap();
        tries.push(r.status().as_u16());
    }
    // The user's own guard: 20 failures a minute, then 429...
    assert!(tries[..20].iter().all(|s| *s == 409), "{tries:?}");
    assert!(tries[20..].iter().all(|s| *s == 429), "{tries:?}");
    // ...the same guard as over the WebSocket...
    let mut m = mallory.ws("doc").await;
    assert_eq!(
        m.err("checkInvite", None, json!({"key": good})).await.0,
        "rate_limited"
    );
    // ...while others at the same address keep their own budget.
    let bob = server.user("bob").await;
    let r = bob
        .http
        .get(bob.url(&format!("/doc/?acceptInvite={}", "f".repeat(64))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = bob
        .http
        .get(bob.url(&format!("/doc/?acceptInvite={good}")))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/doc/".into()));
}

#[tokio::test]
async fn health_static_and_limits() {
    let server = TestServer::start().await;
    let http = server.client();
    let r = http.get(server.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "OK");
    let r = http
        .get(server.url("/static/keystrate.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(
        http.get(server.url("/static/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Bodies over 64 KiB are refused before parsing.
    let big = json!({"username": "x", "password": "p".repeat(70 * 1024)});
    let r = http
        .post(server.url("/auth/register"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Without a Content-Length (chunked), the limit holds as the body
    // streams in.
    let status = chunked_post(server.addr, "/auth/register", 70).await;
    assert!(
        status.starts_with("HTTP/1.1 413"),
        "chunked over 64 KiB: {status}"
    );
    assert_eq!(server.engine().store().census().users, 0);
}

#[tokio::test]
async fn security_headers_on_html_and_json() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let anon = server.client();
    // Every kind of HTML answer: pages, the login form, error pages.
    for (who, path, status) in [
        (&anon, "/", 200),
        (&anon, "/auth/login", 200),
        (&alice.http, "/doc/", 200),
        (&alice.http, "/bad%20id/", 404),
        (
            &alice.http,
            &format!("/doc/?acceptInvite={}", "0".repeat(64)),
            409,
        ),
    ] {
        let r = who.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    // JSON answers, successes and errors, the directory's envelope included.
    for (who, path) in [
        (&alice.http, "/api/documents"),
        (&anon, "/auth/me"),
        (&anon, "/identity?publicKey=nope"),
    ] {
        let r = who.get(server.url(path)).send().await.unwrap();
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

/// warp's own rejections carry a code that names their status (not a
/// blanket `bad_request`).
#[tokio::test]
async fn unmatched_requests_get_codes_matching_their_status() {
    let server = TestServer::start().await;
    let http = server.client();
    let big = json!({"username": "x", "password": "p".repeat(70 * 1024)});
    for (request, status, code) in [
        (http.get(server.url("/no/such/route")), 404, "not_found"),
        (
            http.put(server.url("/auth/login")),
            405,
            "method_not_allowed",
        ),
        (
            http.post(server.url("/auth/register")).json(&big),
            413,
            "payload_too_large",
        ),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), status);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
}

/// `POST /auth/password`: a user changes their own password with the
/// current one; every other session ends (its sockets close), the caller's
/// continues with a fresh cookie.
#[tokio::test]
async fn users_change_their_own_password() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc").await;
    let other = crate::common::process::login(&server.base, "alice").await;
    let other_cookie = other.cookie.clone();
    let mut other_socket = Ws::connect(&server.base, "doc", Some(&other_cookie), None)
        .await
        .unwrap();
    let change = |client: &reqwest::Client, body: Value| {
        client.post(server.url("/auth/password")).json(&body).send()
    };

    let r = change(
        &server.client(),
        json!({"password": "correct horse", "newPassword": "battery staple"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401, "needs a session");
    let r = change(
        &alice.http,
        json!({"password": "wrong horse", "newPassword": "battery staple"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong current password"));
    let r = change(
        &alice.http,
        json!({"password": "correct horse", "newPassword": "short"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    let r = change(
        &alice.http,
        json!({"password": "correct horse", "newPassword": "battery staple"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("keystrate_session="));
    let me = |client: &reqwest::Client| client.get(server.url("/auth/me")).send();
    assert_eq!(
        me(&alice.http).await.unwrap().status(),
        200,
        "this session goes on"
    );
    assert_eq!(
        me(&other.http).await.unwrap().status(),
        401,
        "the other session ended"
    );
    assert!(
        other_socket
            .closes_within(std::time::Duration::from_secs(10))
            .await,
        "sockets of ended sessions close"
    );
    for (password, status) in [("correct horse", 401), ("battery staple", 200)] {
        let r = server
            .client()
            .post(server.url("/auth/login"))
            .json(&json!({"username": "alice", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{password}");
    }
}

/// Behind a TLS-terminating proxy (`--public-url https://…`), the session
/// cookie is `Secure`, and lives 30 days (`Max-Age`) unless configured.
#[tokio::test]
async fn https_public_url_makes_the_session_cookie_secure_for_thirty_days() {
    let server =
        TestServer::start_with(|s| s.public_url = Some("https://keystrate.example".into())).await;
    // reqwest keeps Secure cookies off plain http: read Set-Cookie itself.
    let r = reqwest::Client::new()
        .post(server.url("/auth/register"))
        .header("origin", "https://keystrate.example")
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    assert!(attributes.contains(&"Secure"), "{cookie}");
    assert!(
        attributes.contains(&format!("Max-Age={}", 30 * 24 * 3600).as_str()),
        "{cookie}"
    );
}

/// POSTs `kib` KiB of JSON whitespace with `Transfer-Encoding: chunked` (no
/// `Content-Length`); the answer's status line.
async fn chunked_post(addr: std::net::SocketAddr, path: &str, kib: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..kib {
        // The server may answer and close before the whole body is sent.
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tcp.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_string()
}

/// Unknown users cost the same Argon2 work as known ones (SECURITY.md), so
/// timing does not tell which names exist. Counted, not timed: a login for
/// a name nobody has computes one password hash, exactly as a wrong
/// password for a real account does (`keystrate_password_hashes_total`;
/// the metrics recorder is process-wide, so this runs the binary).
#[tokio::test]
async fn a_login_for_an_unknown_user_computes_a_hash_as_a_wrong_password_does() {
    use crate::common::metrics::{sample, scrape};
    use crate::common::process::{register, Proc};
    let dir = tempfile::tempdir().unwrap();
    let p = Proc::start_logged(dir.path(), &["--metrics-listen", "127.0.0.1:0"], &[]).await;
    let metrics = p.metrics_url().await;
    register(&p.base, "alice").await;
    let hashes = || async {
        let text = scrape(&metrics).await;
        sample(&text, "keystrate_password_hashes_total").expect("the hash counter")
    };
    let login = |name: &str, password: &str| {
        let body = json!({"username": name, "password": password});
        client()
            .post(p.url("/auth/login"))
            .json(&body)
            .status_code()
    };
    let start = hashes().await;
    assert!(start >= 1.0, "registering hashed a password: {start}");
    assert_eq!(login("alice", "wrong password").await, 401);
    let after_wrong_password = hashes().await;
    assert_eq!(login("nobody", PASSWORD).await, 401);
    let after_unknown_user = hashes().await;
    assert_eq!(login("alice", PASSWORD).await, 200);
    let after_right_password = hashes().await;
    assert_eq!(
        [
            after_wrong_password - start,
            after_unknown_user - after_wrong_password,
            after_right_password - after_unknown_user,
        ],
        [1.0, 1.0, 1.0],
        "one hash per login, whoever asks"
    );
    p.stop();
}
