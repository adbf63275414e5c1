//! API keys against a real server: the Smooch-style REST (app and account
//! keys, JWTs), the Prosody-style `/invites_api`, REST invites, and the
//! cascades that delete keys. JWTs are also self-signed here with the hmac
//! crate directly, as a program would, not with the server's code.

use crate::common::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use keystrate::engine::keys::Holder;
use serde_json::{json, Value};

/// An HS256 JWT made the way a client library would.
fn self_signed(header: Value, claims: Value, secret: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn app_jwt(id: &str, secret: &str) -> String {
    self_signed(
        json!({"alg": "HS256", "typ": "JWT", "kid": id}),
        json!({"scope": "app"}),
        secret,
    )
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Status and JSON body of a response.
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(client: &reqwest::Client, url: String, auth: Option<&str>) -> (u16, Value) {
    let mut req = client.get(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    answer(req.send().await.unwrap()).await
}

/// Asserts a Smooch error envelope with its status.
fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{got:?}");
    assert_eq!(got.1["error"]["code"], code, "{got:?}");
    assert!(
        got.1["error"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{got:?}"
    );
}

#[tokio::test]
async fn app_key_rest_routes_and_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc1").await;
    let anon = server.client();

    // Create: exact Smooch shape, id and secret formats.
    let r = alice
        .http
        .post(alice.url("/v1/apps/doc1/keys"))
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, 201);
    let key = body["key"].as_object().unwrap();
    let mut fields: Vec<&str> = key.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["_id", "name", "secret"]);
    let id = key["_id"].as_str().unwrap().to_string();
    let secret = key["secret"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("app_")
            && id.len() == 28
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(secret.len(), 32);
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(key["name"], "ci");

    // List and get, as the owner: the secret is there.
    let list = get(&alice.http, alice.url("/v1/apps/doc1/keys"), None).await;
    assert_eq!(
        list,
        (
            200,
            json!({"keys": [{"secret": secret, "name": "ci", "_id": id}]})
        )
    );
    let one = get(
        &alice.http,
        alice.url(&format!("/v1/apps/doc1/keys/{id}")),
        None,
    )
    .await;
    assert_eq!(
        one,
        (
            200,
            json!({"key": {"secret": secret, "name": "ci", "_id": id}})
        )
    );

    // The server-minted JWT: HS256, kid = key id, payload {"scope":"app"}, verifiable with the secret.
    let (status, body) = get(
        &alice.http,
        alice.url(&format!("/v1/apps/doc1/keys/{id}/jwt")),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let token = body["jwt"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT", "kid": id}));
    assert_eq!(claims, json!({"scope": "app"}));
    // Its signature is the HMAC of its own header and payload with the
    // secret, checked here with the hmac crate (header field order is the
    // signer's choice, so the bytes need not match a self-signed token's).
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap())
        .expect("signed with the key's secret");

    // Errors.
    assert_error(
        &get(&anon, server.url("/v1/apps/doc1/keys"), None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &get(&bob.http, bob.url("/v1/apps/doc1/keys"), None).await,
        403,
        "forbidden",
    );
    assert_error(
        &get(&alice.http, alice.url("/v1/apps/nodoc/keys"), None).await,
        404,
        "not_found",
    );
    assert_error(
        &get(
            &alice.http,
            alice.url("/v1/apps/doc1/keys/app_000000000000000000000000"),
            None,
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &get(&alice.http, alice.url("/v1/apps/doc1/nothing"), None).await,
        404,
        "not_found",
    );
    let r = alice
        .http
        .post(alice.url("/v1/apps/doc1/keys"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, 400, "bad_request");
    let r = alice
        .http
        .post(alice.url("/v1/apps/doc1/keys"))
        .json(&json!({"name": "a\nb"}))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, 400, "bad_request");
    let r = bob
        .http
        .post(bob.url("/v1/apps/doc1/keys"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, 403, "forbidden");
    // An app key is not account scope.
    assert_error(
        &get(
            &anon,
            server.url("/v1/apps/doc1/keys"),
            Some(&basic(&id, &secret)),
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &get(
            &anon,
            server.url("/v1/apps/doc1/keys"),
            Some(&format!("Bearer {}", app_jwt(&id, &secret))),
        )
        .await,
        401,
        "unauthorized",
    );

    // Another admin sees the key but neither its secret nor a JWT for it.
    let mut a = alice.ws("doc1").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "arw"}),
    )
    .await;
    let list = get(&bob.http, bob.url("/v1/apps/doc1/keys"), None).await;
    assert_eq!(
        list,
        (
            200,
            json!({"keys": [{"secret": null, "name": "ci", "_id": id}]})
        )
    );
    assert_error(
        &get(
            &bob.http,
            bob.url(&format!("/v1/apps/doc1/keys/{id}/jwt")),
            None,
        )
        .await,
        403,
        "forbidden",
    );

    // Delete, then it is gone.
    let r = alice
        .http
        .delete(alice.url(&format!("/v1/apps/doc1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await, (200, json!({})));
    let r = alice
        .http
        .delete(alice.url(&format!("/v1/apps/doc1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, 404, "not_found");
    assert_eq!(
        get(&alice.http, alice.url("/v1/apps/doc1/keys"), None).await,
        (200, json!({"keys": []}))
    );
    let r = anon
        .get(server.url(&format!("/invites_api?key={id}/{secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn account_keys_basic_and_account_jwts() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc1").await;
    let anon = server.client();

    let r = alice
        .http
        .post(alice.url("/v1/account/keys"))
        .json(&json!({"name": "laptop"}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, 201);
    let act = body["key"]["_id"].as_str().unwrap().to_string();
    let secret = body["key"]["secret"].as_str().unwrap().to_string();
    assert!(act.starts_with("act_") && act.len() == 28);
    assert_eq!(
        get(&alice.http, alice.url("/v1/account/keys"), None).await,
        (
            200,
            json!({"keys": [{"secret": secret, "name": "laptop", "_id": act}]})
        )
    );
    assert_eq!(
        get(&bob.http, bob.url("/v1/account/keys"), None).await,
        (200, json!({"keys": []}))
    );
    assert_error(
        &get(&bob.http, bob.url(&format!("/v1/account/keys/{act}")), None).await,
        404,
        "not_found",
    );

    // Basic act_id:secret is account scope: it can create app keys for alice.
    let auth = basic(&act, &secret);
    let r = anon
        .post(server.url("/v1/apps/doc1/keys"))
        .header("authorization", &auth)
        .json(&json!({"name": "via basic"}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["key"]["_id"].as_str().unwrap().starts_with("app_"));
    assert_error(
        &get(
            &anon,
            server.url("/v1/apps/doc1/keys"),
            Some(&basic(&act, "wrong-secret-wrong-secret-wrong-s")),
        )
        .await,
        401,
        "unauthorized",
    );

    // Account JWTs: server-minted (session only) and self-signed.
    let (status, body) = get(
        &alice.http,
        alice.url(&format!("/v1/account/keys/{act}/jwt")),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let minted = format!("Bearer {}", body["jwt"].as_str().unwrap());
    assert_eq!(
        get(&anon, server.url("/v1/apps/doc1/keys"), Some(&minted))
            .await
            .0,
        200
    );
    let account_header = json!({"alg": "HS256", "typ": "JWT", "kid": act});
    let own = self_signed(
        account_header.clone(),
        json!({"scope": "account", "exp": now() + 60}),
        &secret,
    );
    assert_eq!(
        get(
            &anon,
            server.url("/v1/apps/doc1/keys"),
            Some(&format!("Bearer {own}"))
        )
        .await
        .0,
        200
    );
    assert_error(
        &get(
            &anon,
            server.url(&format!("/v1/account/keys/{act}/jwt")),
            Some(&minted),
        )
        .await,
        401,
        "unauthorized",
    );

    // Rejected JWTs: expired, alg none, HS512, wrong scope, kid that did not sign.
    let expired = self_signed(
        account_header.clone(),
        json!({"scope": "account", "exp": now() - 10}),
        &secret,
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": act}).to_string()),
        URL_SAFE_NO_PAD.encode(json!({"scope": "account"}).to_string())
    );
    let hs512 = self_signed(
        json!({"alg": "HS512", "typ": "JWT", "kid": act}),
        json!({"scope": "account"}),
        &secret,
    );
    let wrong_scope = self_signed(account_header.clone(), json!({"scope": "app"}), &secret);
    let r = bob
        .http
        .post(bob.url("/v1/account/keys"))
        .json(&json!({"name": "bob's"}))
        .send()
        .await
        .unwrap();
    let (_, body) = answer(r).await;
    let bob_secret = body["key"]["secret"].as_str().unwrap();
    let wrong_kid = self_signed(
        account_header.clone(),
        json!({"scope": "account"}),
        bob_secret,
    );
    let unknown_kid = self_signed(
        json!({"alg": "HS256", "kid": "act_000000000000000000000000"}),
        json!({"scope": "account"}),
        &secret,
    );
    for (what, token) in [
        ("expired", &expired),
        ("none", &none),
        ("hs512", &hs512),
        ("scope", &wrong_scope),
        ("kid", &wrong_kid),
        ("unknown kid", &unknown_kid),
        ("garbage", &"x.y.z".to_string()),
    ] {
        let got = get(
            &anon,
            server.url("/v1/apps/doc1/keys"),
            Some(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(got.0, 401, "{what}: {got:?}");
        assert_eq!(got.1["error"]["code"], "unauthorized", "{what}");
    }

    // Delete the account key: it stops working.
    let r = alice
        .http
        .delete(alice.url(&format!("/v1/account/keys/{act}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await, (200, json!({})));
    assert_eq!(
        get(&anon, server.url("/v1/apps/doc1/keys"), Some(&auth))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn invites_api_with_keys_and_jwts() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc1").await;
    let (id, secret) = alice.app_key("doc1", "bot").await;
    let anon = server.client();
    let api = server.url("/invites_api");

    // Bearer with a server-minted JWT, options in a JSON body.
    let (_, body) = get(
        &alice.http,
        alice.url(&format!("/v1/apps/doc1/keys/{id}/jwt")),
        None,
    )
    .await;
    let minted = body["jwt"].as_str().unwrap().to_string();
    let r = anon
        .post(&api)
        .bearer_auth(&minted)
        .json(&json!({"permissions": "rw", "maxUses": 2, "maxAge": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // A page on another site can read where the invite is.
    assert_eq!(r.headers()["access-control-expose-headers"], "Location");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let invite: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        server.url(&format!(
            "/doc1/?acceptInvite={}",
            invite["key"].as_str().unwrap()
        ))
    );
    assert_eq!(
        (invite["permissions"].as_str(), invite["maxUses"].as_u64()),
        (Some("rw"), Some(2))
    );
    assert_eq!(
        invite["createdBy"],
        json!({"username": "alice", "provider": "local"})
    );

    // Self-signed JWT, form body, and the plain key as Bearer.
    let r = anon
        .post(&api)
        .bearer_auth(app_jwt(&id, &secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("maxAge=60")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = anon
        .get(&api)
        .bearer_auth(format!("{id}/{secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // The invite link works for a second user.
    let r = bob.http.get(&location).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/doc1/");
    assert_eq!(
        bob.http
            .get(bob.url("/doc1/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // redirect → 303 to the same kind of Location; redirect=0 does not.
    let r = anon
        .get(format!("{api}?key={id}/{secret}&redirect=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&server.url("/doc1/?acceptInvite=")));
    let r = anon
        .get(format!("{api}?key={id}/{secret}&redirect=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Bad options → 400 (with CORS); bad credentials → 401 + WWW-Authenticate.
    for bad in [
        "maxAge=0",
        "maxAge=x",
        "permissions=q",
        "maxUses=0",
        "permissions=",
        "colour=red",
    ] {
        let r = anon
            .get(format!("{api}?key={id}/{secret}&{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
    }
    let expired = self_signed(
        json!({"alg": "HS256", "kid": id}),
        json!({"scope": "app", "exp": now() - 1}),
        &secret,
    );
    let account_scoped = self_signed(
        json!({"alg": "HS256", "kid": id}),
        json!({"scope": "account"}),
        &secret,
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": id}).to_string()),
        URL_SAFE_NO_PAD.encode(json!({"scope": "app"}).to_string())
    );
    let unauthorised = [
        anon.get(&api),
        anon.get(format!("{api}?key={id}/wrong")),
        anon.get(format!("{api}?key=nonsense")),
        anon.get(format!("{api}?key={id}")),
        anon.get(&api)
            .bearer_auth(format!("{id}/{}", "A".repeat(32))),
        anon.get(&api).bearer_auth(expired),
        anon.get(&api).bearer_auth(account_scoped),
        anon.get(&api).bearer_auth(none),
        anon.get(&api).header("authorization", "Token abc"),
    ];
    for (i, req) in unauthorised.into_iter().enumerate() {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "case {i}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "case {i}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "case {i}");
    }

    // Preflight.
    let r = anon
        .request(reqwest::Method::OPTIONS, &api)
        .header("origin", "https://example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "GET, POST, OPTIONS");
    assert_eq!(
        h["access-control-allow-headers"],
        "Authorization, Content-Type"
    );

    // Uses are recorded.
    let records = server.engine().keys_of(Holder::Doc("doc1")).unwrap();
    assert!(records[0].last_used_at.is_some());
}

#[tokio::test]
async fn rest_invites_for_programs() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc1").await;
    alice.create_doc("doc2").await;
    let (id, secret) = alice.app_key("doc1", "bot").await;
    let anon = server.client();
    let auth = basic(&id, &secret);

    let r = anon
        .post(server.url("/v1/apps/doc1/invites"))
        .header("authorization", &auth)
        .json(&json!({"permissions": "rw", "maxAge": "300"}))
        .send()
        .await
        .unwrap();
    let (status, invite) = answer(r).await;
    assert_eq!(status, 201, "{invite}");
    assert_eq!(invite["webstrateId"], "doc1");
    let key = invite["key"].as_str().unwrap().to_string();

    let (status, body) = get(
        &anon,
        server.url("/v1/apps/doc1/invites"),
        Some(&format!("Bearer {id}/{secret}")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["invites"].as_array().unwrap().len(), 1);
    assert_eq!(body["invites"][0]["key"], key.as_str());
    // Another admin's invite: only `?all=true` lists it, for the key and for
    // the session alike.
    let bob = server.user("bob").await;
    let grant = json!({"username": "bob", "permissions": "arw"});
    alice
        .ws("doc1")
        .await
        .ok("setPermissions", None, grant)
        .await;
    let bobs = bob
        .ws("doc1")
        .await
        .ok("createInvite", None, json!({}))
        .await;
    let keys = |body: &Value| -> Vec<String> {
        let mut keys: Vec<String> = body["invites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    let mut both = vec![key.clone(), bobs["key"].as_str().unwrap().to_string()];
    both.sort();
    for (client, credentials) in [(&anon, Some(auth.as_str())), (&alice.http, None)] {
        let (_, own) = get(client, server.url("/v1/apps/doc1/invites"), credentials).await;
        assert_eq!(
            keys(&own),
            std::slice::from_ref(&key),
            "default: the owner's only"
        );
        let (_, all) = get(
            client,
            server.url("/v1/apps/doc1/invites?all=true"),
            credentials,
        )
        .await;
        assert_eq!(keys(&all), both, "?all=true: every admin's");
    }

    // A key of doc1 is nothing on doc2; bad options; no credentials.
    assert_error(
        &get(&anon, server.url("/v1/apps/doc2/invites"), Some(&auth)).await,
        401,
        "unauthorized",
    );
    assert_error(
        &get(&anon, server.url("/v1/apps/doc1/invites"), None).await,
        401,
        "unauthorized",
    );
    let r = anon
        .post(server.url("/v1/apps/doc1/invites"))
        .header("authorization", &auth)
        .json(&json!({"maxAge": 0}))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, 400, "bad_request");

    let url = server.url(&format!("/v1/apps/doc1/invites/{key}"));
    let r = anon
        .delete(&url)
        .header("authorization", app_jwt(&id, &secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a JWT needs the Bearer scheme");
    let r = anon
        .delete(&url)
        .bearer_auth(app_jwt(&id, &secret))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await, (200, json!({})));
    let r = anon
        .delete(&url)
        .bearer_auth(app_jwt(&id, &secret))
        .send()
        .await
        .unwrap();
    assert_error(&answer(r).await, 404, "not_found");
    assert_eq!(
        get(&anon, server.url("/v1/apps/doc1/invites"), Some(&auth)).await,
        (200, json!({"invites": []}))
    );
}

#[tokio::test]
async fn demoting_the_owner_or_deleting_the_document_kills_keys() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc1").await;
    let mut a = alice.ws("doc1").await;
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "arw"}),
    )
    .await;
    let (bob_key, bob_secret) = bob.app_key("doc1", "bob's bot").await;
    let (alice_key, _) = alice.app_key("doc1", "alice's bot").await;
    let anon = server.client();
    let use_bob_key = || {
        anon.get(server.url(&format!("/invites_api?key={bob_key}/{bob_secret}")))
            .send()
    };
    assert_eq!(use_bob_key().await.unwrap().status(), 201);

    // Non-admins cannot manage keys.
    let carol = server.user("carol").await;
    assert_error(
        &get(&carol.http, carol.url("/v1/apps/doc1/keys"), None).await,
        403,
        "forbidden",
    );

    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "rw"}),
    )
    .await;
    assert_eq!(use_bob_key().await.unwrap().status(), 401);
    let (_, list) = get(&alice.http, alice.url("/v1/apps/doc1/keys"), None).await;
    let ids: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [alice_key.as_str()],
        "bob's key is gone, alice's stays"
    );
    assert!(server.engine().store().key(&bob_key).unwrap().is_none());

    // Re-promoting bob does not bring the key back.
    a.ok(
        "setPermissions",
        None,
        json!({"username": "bob", "provider": "local", "permissions": "arw"}),
    )
    .await;
    assert_eq!(use_bob_key().await.unwrap().status(), 401);

    // Deleting the document deletes its keys.
    let r = alice
        .http
        .delete(alice.url("/api/documents/doc1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(server.engine().store().key(&alice_key).unwrap().is_none());
    assert_eq!(server.engine().store().census().key_listings, 0);
}

#[tokio::test]
async fn keys_panel_script_is_served() {
    let server = TestServer::start().await;
    let r = server
        .client()
        .get(server.url("/static/keys-panel.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(r.text().await.unwrap().contains("api-keys"));
}

/// An account key cannot create account keys (Basic, minted or self-signed
/// JWT): otherwise a leaked key could copy itself, and deleting it would
/// leave the copies working. Creating app keys with it stays allowed.
#[tokio::test]
async fn account_keys_cannot_mint_account_keys() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let r = alice
        .http
        .post(alice.url("/v1/account/keys"))
        .json(&json!({"name": "leaked"}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, 201, "{body}");
    let act = body["key"]["_id"].as_str().unwrap().to_string();
    let secret = body["key"]["secret"].as_str().unwrap().to_string();
    let (_, minted) = get(
        &alice.http,
        alice.url(&format!("/v1/account/keys/{act}/jwt")),
        None,
    )
    .await;
    let self_signed_jwt = self_signed(
        json!({"alg": "HS256", "typ": "JWT", "kid": act}),
        json!({"scope": "account"}),
        &secret,
    );
    let anon = server.client();
    for (what, auth) in [
        ("basic", basic(&act, &secret)),
        (
            "minted",
            format!("Bearer {}", minted["jwt"].as_str().unwrap()),
        ),
        ("self-signed", format!("Bearer {self_signed_jwt}")),
        ("full key", format!("Bearer {act}/{secret}")),
    ] {
        let r = anon
            .post(server.url("/v1/account/keys"))
            .header("authorization", auth)
            .json(&json!({"name": "copy"}))
            .send()
            .await
            .unwrap();
        let got = answer(r).await;
        assert_eq!(got.0, 401, "{what}: {got:?}");
        assert_error(&got, 401, "unauthorized");
    }
    // Still the one key: nothing was created.
    let (_, listed) = get(&alice.http, alice.url("/v1/account/keys"), None).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
}

/// Smooch served the same API under `/v1.1` (smooch-core 7 and later call
/// it): app keys, account keys and invites answer there exactly as under
/// `/v1`, and both share one store.
#[tokio::test]
async fn v1_1_serves_the_same_api() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc1").await;
    let anon = server.client();

    let r = alice
        .http
        .post(alice.url("/v1.1/apps/doc1/keys"))
        .json(&json!({"name": "new client"}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, 201, "{body}");
    let id = body["key"]["_id"].as_str().unwrap().to_string();
    let secret = body["key"]["secret"].as_str().unwrap().to_string();
    let listed = json!({"keys": [{"secret": secret, "name": "new client", "_id": id}]});
    for version in ["v1", "v1.1"] {
        let url = alice.url(&format!("/{version}/apps/doc1/keys"));
        assert_eq!(get(&alice.http, url, None).await, (200, listed.clone()));
    }
    let (status, body) = get(
        &alice.http,
        alice.url(&format!("/v1.1/apps/doc1/keys/{id}/jwt")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let minted = format!("Bearer {}", body["jwt"].as_str().unwrap());
    let r = anon
        .post(server.url("/v1.1/apps/doc1/invites"))
        .header("authorization", &minted)
        .json(&json!({"permissions": "r"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, body) = get(&anon, server.url("/v1.1/apps/doc1/invites"), Some(&minted)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invites"].as_array().unwrap().len(), 1);
    let (status, _) = get(&alice.http, alice.url("/v1.1/account/keys"), None).await;
    assert_eq!(status, 200);
    assert_error(
        &get(&alice.http, alice.url("/v1.1/apps/doc1/nothing"), None).await,
        404,
        "not_found",
    );
    let r = alice
        .http
        .delete(alice.url(&format!("/v1.1/apps/doc1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await, (200, json!({})));
    assert_eq!(
        get(&alice.http, alice.url("/v1/apps/doc1/keys"), None).await,
        (200, json!({"keys": []}))
    );
}

/// An oversized body under `/v1` is answered in Smooch's shape with a code
/// naming the status, and creates nothing.
#[tokio::test]
async fn v1_oversized_bodies_get_smooch_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc1").await;
    for version in ["v1", "v1.1"] {
        let r = alice
            .http
            .post(alice.url(&format!("/{version}/apps/doc1/keys")))
            .json(&json!({"name": "x".repeat(70 * 1024)}))
            .send()
            .await
            .unwrap();
        assert_error(&answer(r).await, 413, "payload_too_large");
    }
    assert_eq!(
        get(&alice.http, alice.url("/v1/apps/doc1/keys"), None).await,
        (200, json!({"keys": []}))
    );
}

/// The key routes say what they need: the credentials a route takes when
/// none came, what is wrong with a malformed `Authorization` header, and
/// every option `/invites_api` accepts.
#[tokio::test]
async fn key_routes_explain_their_refusals() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_doc("doc1").await;
    let (id, secret) = alice.app_key("doc1", "ci").await;
    let anon = server.client();
    let description =
        |got: &(u16, Value)| got.1["error"]["description"].as_str().unwrap().to_string();

    // No credentials: account-scope routes name all three kinds.
    let got = get(&anon, server.url("/v1/apps/doc1/keys"), None).await;
    assert_error(&got, 401, "unauthorized");
    let text = description(&got);
    for needed in [
        "logged-in session",
        "Basic base64(<act_id>:<secret>)",
        "Bearer <account JWT>",
    ] {
        assert!(text.contains(needed), "{text}");
    }
    // Invite routes take an app key too.
    let got = get(&anon, server.url("/v1/apps/doc1/invites"), None).await;
    assert_error(&got, 401, "unauthorized");
    assert!(description(&got).contains("app key of doc1"), "{got:?}");

    // Malformed headers: 401 with what is wrong, never an empty body.
    let wrapped = basic(&id, &secret).replacen("Basic ", "Basic !", 1);
    for (header, says) in [
        (wrapped.as_str(), "not base64"),
        ("Basic", "no credentials after the scheme"),
        ("Token abc", "unknown scheme"),
        ("Basic Zm9v", "no ':'"),
    ] {
        let got = get(&anon, server.url("/v1/apps/doc1/invites"), Some(header)).await;
        assert_error(&got, 401, "unauthorized");
        let text = description(&got);
        assert!(
            text.starts_with("Malformed Authorization header") && text.contains(says),
            "{header}: {text}"
        );
    }
    // The same key, well formed, works.
    let got = get(
        &anon,
        server.url("/v1/apps/doc1/invites"),
        Some(&basic(&id, &secret)),
    )
    .await;
    assert_eq!(got.0, 200, "{got:?}");

    // /invites_api lists `redirect` among its options.
    let r = anon
        .get(server.url(&format!("/invites_api?key={id}/{secret}&maxage=5")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("options are permissions, maxAge, maxUses, redirect"),
        "{text}"
    );
}

/// The rules live in the engine: a call made for a caller without the right
/// is refused there, whatever route (or none) made it, and changes nothing.
#[tokio::test]
async fn the_engine_refuses_key_calls_without_rights() {
    use keystrate::engine::key_rules::KeyScope;
    use keystrate::engine::Caller;
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    alice.create_doc("doc1").await;
    let engine = server.engine();
    let caller = |u: &User| Caller::User(engine.session_user(&u.cookie).unwrap().unwrap());
    let (alice_caller, bob_caller) = (caller(&alice), caller(&bob));
    let (id, _) = alice.app_key("doc1", "ci").await;
    let app = KeyScope::App("doc1");

    // Bob is no admin of doc1: listing, reading, deleting and minting a
    // JWT of its keys are refused with not_admin.
    let not_admin = |e: keystrate::engine::Error| assert_eq!(e.code(), "not_admin", "{e}");
    not_admin(engine.keys_for(&bob_caller, app).unwrap_err());
    not_admin(engine.key_for(&bob_caller, app, &id).unwrap_err());
    not_admin(engine.jwt_for(&bob_caller, app, &id).unwrap_err());
    not_admin(
        engine
            .delete_key_for(&bob_caller, app, &id)
            .await
            .unwrap_err(),
    );
    let anonymous = engine.keys_for(&Caller::Anonymous, app).unwrap_err();
    assert_eq!(anonymous.code(), "not_logged_in");
    assert_eq!(
        anonymous.to_string(),
        "Must be logged in to manage API keys"
    );

    // A second admin may list the key but not mint a JWT with it.
    alice
        .ws("doc1")
        .await
        .ok(
            "setPermissions",
            None,
            json!({"username": "bob", "permissions": "arw"}),
        )
        .await;
    assert_eq!(engine.keys_for(&bob_caller, app).unwrap().len(), 1);
    let not_owner = engine.jwt_for(&bob_caller, app, &id).unwrap_err();
    assert_eq!(not_owner.code(), "forbidden", "{not_owner}");
    assert!(engine.jwt_for(&alice_caller, app, &id).is_ok());

    // Account keys are their user's alone: bob cannot see or delete alice's.
    let (status, body) = answer(
        alice
            .http
            .post(alice.url("/v1/account/keys"))
            .json(&json!({"name": "mine"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let account_id = body["key"]["_id"].as_str().unwrap();
    let missing = engine
        .delete_key_for(&bob_caller, KeyScope::Account, account_id)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "not_found", "{missing}");
    assert!(engine
        .keys_for(&bob_caller, KeyScope::Account)
        .unwrap()
        .is_empty());

    // Nothing refused was deleted.
    assert_eq!(engine.keys_of(Holder::Doc("doc1")).unwrap().len(), 1);
    assert_eq!(
        engine
            .keys_for(&alice_caller, KeyScope::Account)
            .unwrap()
            .len(),
        1
    );
}
