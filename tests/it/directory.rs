//! The key directory (docs/directory.md) over real HTTP: the shared
//! known-answer vectors, the full flow with keys generated here, and one
//! test per verification rule, each checking that a rejected request
//! changed nothing.

use crate::common::TestServer;
use crate::directory_support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use keystrate::config::{Config, ServeArgs};
use serde_json::{json, Value};

async fn start() -> (TestServer, Directory) {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut ServeArgs)) -> (TestServer, Directory) {
    let server = TestServer::start_with(tweak).await;
    let dir = Directory {
        base: server.base.clone(),
        http: server.client(),
    };
    (server, dir)
}

// ---- known answers ------------------------------------------------------

/// The identity key a vector CACAO names (aud when a did:key, else
/// resources[0]).
fn vector_identity_key(cacao: &Value) -> String {
    let aud = cacao["p"]["aud"].as_str().unwrap();
    if aud.starts_with("did:key:") {
        aud.to_string()
    } else {
        cacao["p"]["resources"][0].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn cacao_vectors_get_their_expected_verdicts() {
    let (_server, dir) = start().await;
    for v in vectors()["cacao"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let key = vector_identity_key(&v["cacao"]);
        let reply = dir.post_identity(&v["cacao"]).await;
        let expected = v["expect_post_identity_status"].as_u64().unwrap() as u16;
        assert_eq!(reply.status, expected, "{name}: {reply:?}");
        let resolved = dir
            .get_identity(key.strip_prefix("did:key:").unwrap())
            .await;
        if expected == 200 {
            assert_eq!(resolved.value()["cacao"], v["cacao"], "{name}");
        } else {
            resolved.fails(404, "Identity key not found");
        }
    }
}

#[tokio::test]
async fn did_jwt_vectors_are_rejected_by_every_route() {
    let (_server, dir) = start().await;
    let synthetic = &vectors()["synthetic"];
    let mut tokens: Vec<String> = vectors()["did_jwt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["jwt"].as_str().unwrap().to_string())
        .collect();
    for name in [
        "register_invite_jwt",
        "unregister_invite_jwt",
        "unregister_identity_jwt",
    ] {
        tokens.push(synthetic[name].as_str().unwrap().to_string());
    }
    for token in &tokens {
        dir.post_invite(token).await.rejects_token();
        dir.delete_invite(token).await.rejects_token();
        dir.delete_identity(token).await.rejects_token();
    }
}

#[tokio::test]
async fn synthetic_cacaos_register_the_synthetic_identity() {
    let (_server, dir) = start().await;
    let s = &vectors()["synthetic"];
    let key = s["identity_did_key"].as_str().unwrap();
    dir.post_identity(&s["cacao_no_statement"]).await.value();
    dir.post_identity(&s["cacao_with_statement"]).await.value();
    let resolved = dir.get_identity(key).await;
    assert_eq!(resolved.value()["cacao"], s["cacao_with_statement"]);
}

/// The helpers that make this file's requests (directory_support: did:key
/// encoding, addresses, the SIWE text, EIP-191 signing) reproduce the
/// vectors' values from their seeds, so the positive paths below stand on
/// values made independently of the server's code.
#[test]
fn known_answers_reproduce_the_vectors() {
    let v = vectors();
    let s = &v["synthetic"];
    let identity = Identity::from_seed_hex(s["identity_seed_hex"].as_str().unwrap());
    assert_eq!(identity.did, s["identity_did_key"]);
    let invite_pub = hex::decode(s["invite_pub_hex"].as_str().unwrap()).unwrap();
    assert_eq!(did_key(X25519_PUB, &invite_pub), s["invite_did_key"]);
    for key in v["did_key"].as_array().unwrap() {
        let codec: [u8; 2] = hex::decode(key["multicodec"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let public = hex::decode(key["public_key_hex"].as_str().unwrap()).unwrap();
        assert_eq!(did_key(codec, &public), key["did"]);
    }
    let wallet = Wallet::from_key_hex(s["wallet_privkey_hex"].as_str().unwrap());
    let eip55 = s["wallet_address_eip55"].as_str().unwrap();
    assert_eq!(wallet.address, eip55.to_lowercase());
    for name in ["cacao_no_statement", "cacao_with_statement"] {
        let payload: Payload = payload_of(&s[name]);
        let text = siwe_text(&payload, payload.statement.as_deref());
        assert_eq!(text, s[format!("{name}_message")], "{name}");
        // The vector's signature over that text recovers the vector wallet.
        let signature = s[name]["s"]["s"].as_str().unwrap();
        assert_eq!(recover(&text, signature), wallet.address, "{name}");
    }
    for vector in v["cacao"].as_array().unwrap() {
        if vector["expect_post_identity_status"] == 200 {
            let payload = payload_of(&vector["cacao"]);
            let text = siwe_text(&payload, payload.statement.as_deref());
            assert_eq!(text, vector["siwe_message"], "{}", vector["name"]);
        }
    }
}

/// The address that made the EIP-191 `signature` (`0x` r ‖ s ‖ v) over
/// `message`, recovered with k256 directly.
fn recover(message: &str, signature: &str) -> String {
    use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
    let bytes = hex::decode(signature.strip_prefix("0x").unwrap()).unwrap();
    let signature = Signature::from_slice(&bytes[..64]).unwrap();
    let parity = RecoveryId::from_byte(bytes[64] - 27).unwrap();
    let hash = personal_sign_hash(message);
    address_of(&VerifyingKey::recover_from_prehash(&hash, &signature, parity).unwrap())
}

/// A vector CACAO's payload in the helpers' own type.
fn payload_of(cacao: &Value) -> Payload {
    let p = &cacao["p"];
    let text = |field: &str| p[field].as_str().map(str::to_string);
    Payload {
        domain: text("domain").unwrap(),
        iss: text("iss").unwrap(),
        statement: text("statement"),
        aud: text("aud").unwrap(),
        uri: text("uri"),
        version: text("version").unwrap(),
        nonce: text("nonce").unwrap(),
        iat: text("iat").unwrap(),
        exp: text("exp"),
        nbf: text("nbf"),
        request_id: text("requestId"),
        resources: p["resources"].as_array().map(|list| {
            list.iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        }),
    }
}

/// The vectors' own wallet, identity and invite keys through the whole
/// flow with fresh timestamps: the invite key the server hands out for the
/// vector account is the vector's.
#[tokio::test]
async fn the_vector_keys_register_and_resolve() {
    let (_server, dir) = start().await;
    let s = &vectors()["synthetic"];
    let wallet = Wallet::from_key_hex(s["wallet_privkey_hex"].as_str().unwrap());
    let identity = Identity::from_seed_hex(s["identity_seed_hex"].as_str().unwrap());
    dir.post_identity(&wallet.cacao(&identity)).await.value();
    let mut c = claims(&identity, &wallet, &dir.aud(), "register_invite");
    c["sub"] = s["invite_did_key"].clone();
    dir.post_invite(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();
    let eip55 = s["wallet_address_eip55"].as_str().unwrap();
    let resolved = dir.get_invite(&format!("eip155:1:{eip55}")).await;
    assert_eq!(resolved.value()["inviteKey"], s["invite_did_key"]);
    let identity_key = s["identity_did_key"].as_str().unwrap();
    let resolved = dir.get_identity(identity_key.strip_prefix("did:key:").unwrap());
    assert_eq!(resolved.await.value()["cacao"]["p"]["aud"], identity_key);
}

// ---- full flow and storage rules ------------------------------------------

#[tokio::test]
async fn full_flow_with_generated_keys() {
    let (_server, dir) = start().await;
    let wallet = Wallet::generate();
    let identity = Identity::generate();
    let cacao = wallet.cacao(&identity);
    assert_eq!(dir.post_identity(&cacao).await.value(), &Value::Null);
    assert_eq!(
        dir.get_identity(identity.public_key()).await.value()["cacao"],
        cacao
    );
    assert_eq!(
        dir.get_identity(&identity.did).await.value()["cacao"],
        cacao
    );

    let first = invite_key();
    let mut c = claims(&identity, &wallet, &dir.aud(), "register_invite");
    c["sub"] = json!(first);
    dir.post_invite(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();
    assert_eq!(
        dir.invite_of(&wallet).await.as_deref(),
        Some(first.as_str())
    );
    // The account resolves under any spelling of its address.
    let mixed = format!("eip155:1:0x{}", wallet.address[2..].to_uppercase());
    assert_eq!(
        dir.get_invite(&mixed).await.value()["inviteKey"],
        json!(first)
    );

    let second = invite_key();
    c["sub"] = json!(second);
    dir.post_invite(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();
    assert_eq!(
        dir.invite_of(&wallet).await.as_deref(),
        Some(second.as_str())
    );

    let c = claims(&identity, &wallet, &dir.aud(), "unregister_invite");
    dir.delete_invite(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();
    assert_eq!(dir.invite_of(&wallet).await, None);
    // Removing an invite key that is already gone is still a success.
    dir.delete_invite(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();

    c_register_invite(&dir, &identity, &wallet, &invite_key()).await;
    let c = claims(&identity, &wallet, &dir.aud(), "unregister_identity");
    dir.delete_identity(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();
    assert!(!dir.has_identity(&identity).await);
    // The last identity key went, so the invite key went with it.
    assert_eq!(dir.invite_of(&wallet).await, None);
}

async fn c_register_invite(dir: &Directory, identity: &Identity, wallet: &Wallet, invite: &str) {
    let mut c = claims(identity, wallet, &dir.aud(), "register_invite");
    c["sub"] = json!(invite);
    dir.post_invite(&identity.sign_jwt(&jwt_header(), &c))
        .await
        .value();
}

#[tokio::test]
async fn invite_key_survives_while_another_identity_remains() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let second = Identity::generate();
    dir.post_identity(&r.wallet.cacao(&second)).await.value();
    dir.delete_identity(&r.sign(&r.claims(&dir, "unregister_identity")))
        .await
        .value();
    assert!(!dir.has_identity(&r.identity).await);
    assert!(dir.has_identity(&second).await);
    assert_eq!(
        dir.invite_of(&r.wallet).await.as_deref(),
        Some(r.invite.as_str())
    );
}

#[tokio::test]
async fn identity_key_of_another_account_conflicts() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let other = Wallet::generate();
    dir.post_identity(&other.cacao(&r.identity))
        .await
        .fails(409, "conflict");
    let resolved = dir.get_identity(r.identity.public_key()).await;
    assert_eq!(resolved.value()["cacao"]["p"]["iss"], json!(r.wallet.pkh()));
    r.unchanged(&dir).await;
}

#[tokio::test]
async fn re_registration_is_idempotent() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    dir.post_identity(&r.wallet.cacao(&r.identity))
        .await
        .value();
    dir.post_identity(&r.wallet.cacao(&r.identity))
        .await
        .value();
    r.unchanged(&dir).await;
    // One key, not three: removing it once empties the account.
    dir.delete_identity(&r.sign(&r.claims(&dir, "unregister_identity")))
        .await
        .value();
    assert_eq!(dir.invite_of(&r.wallet).await, None);
}

#[tokio::test]
async fn not_found_replies_match_the_keys_server() {
    let (_server, dir) = start().await;
    let reply = dir.get_invite("eip155:1:0xABC").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.body,
        json!({"status": "FAILURE", "error": {"name": "Invite key not found",
            "message": "Cannot find Invite key with specified identifier eip155:1:0xABC"}, "value": null})
    );
    let reply = dir
        .get_identity("z6MkhoV7JnKEFgwai4R1ui14xcPDnqVFZ3a9dUNM3fE3z3Nf")
        .await;
    assert_eq!(
        reply.fails(404, "Identity key not found").body["error"]["message"],
        "Cannot find Identity key with specified identifier z6MkhoV7JnKEFgwai4R1ui14xcPDnqVFZ3a9dUNM3fE3z3Nf"
    );
}

// ---- envelope on malformed requests ---------------------------------------

#[tokio::test]
async fn malformed_requests_get_the_envelope() {
    let (server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let http = server.client();
    let post = |path: &str| http.post(server.url(path));
    let json_type = ("content-type", "application/json");
    dir.send(
        post("/invite")
            .header(json_type.0, json_type.1)
            .body("{not json"),
    )
    .await
    .fails(400, "validation");
    dir.send(
        post("/invite")
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await
    .fails(415, "validation");
    dir.send(post("/identity").body("{}"))
        .await
        .fails(415, "validation");
    dir.send(post("/invite").json(&json!({"idAuth": "a.b.c", "extra": 1})))
        .await
        .fails(400, "validation");
    dir.send(post("/identity").json(&json!({"cacao": {}, "other": true})))
        .await
        .fails(400, "validation");
    dir.send(post("/invite").json(&json!({})))
        .await
        .fails(400, "validation");
    let big = format!("{{\"idAuth\":\"{}\"}}", "a".repeat(70 * 1024));
    dir.send(post("/invite").header(json_type.0, json_type.1).body(big))
        .await
        .fails(413, "payload_too_large");
    dir.send(http.get(server.url("/invite")))
        .await
        .fails(400, "validation");
    dir.send(http.get(server.url("/identity?publicKey=")))
        .await
        .fails(400, "validation");
    dir.send(http.put(server.url("/identity")))
        .await
        .fails(405, "method_not_allowed");
    for path in ["/identity/extra", "/invite/a/b"] {
        dir.send(http.get(server.url(path)))
            .await
            .fails(404, "not_found");
    }
    r.unchanged(&dir).await;
}

// ---- did-JWT rules (POST /invite unless stated) ---------------------------

/// Sends `token` to POST /invite, expects a verification failure and no
/// change.
async fn invite_rejected(dir: &Directory, r: &Registered, token: &str) {
    dir.post_invite(token).await.rejects_token();
    r.unchanged(dir).await;
}

#[tokio::test]
async fn jwt_must_be_three_unpadded_base64url_parts() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let token = r.sign(&r.new_invite_claims(&dir));
    invite_rejected(&dir, &r, &format!("{token}==")).await;
    invite_rejected(&dir, &r, &format!("{token}.e30")).await;
    let two: Vec<&str> = token.split('.').take(2).collect();
    invite_rejected(&dir, &r, &two.join(".")).await;
    invite_rejected(&dir, &r, &token.replacen('.', "+.", 1)).await;
}

#[tokio::test]
async fn jwt_alg_must_be_eddsa() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let header = json!({"alg": "ES256", "typ": "JWT"});
    invite_rejected(
        &dir,
        &r,
        &r.identity.sign_jwt(&header, &r.new_invite_claims(&dir)),
    )
    .await;
}

#[tokio::test]
async fn jwt_typ_must_be_jwt() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let header = json!({"alg": "EdDSA", "typ": "JWS"});
    invite_rejected(
        &dir,
        &r,
        &r.identity.sign_jwt(&header, &r.new_invite_claims(&dir)),
    )
    .await;
    let header = json!({"alg": "EdDSA"});
    invite_rejected(
        &dir,
        &r,
        &r.identity.sign_jwt(&header, &r.new_invite_claims(&dir)),
    )
    .await;
}

#[tokio::test]
async fn jwt_iss_must_be_an_ed25519_did_key() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    let same_key_as_x25519 = did_key(X25519_PUB, r.identity.key.verifying_key().as_bytes());
    c["iss"] = json!(same_key_as_x25519);
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c["iss"] = json!(format!(
        "did:key:{}",
        hex::encode(r.identity.key.verifying_key().as_bytes())
    ));
    invite_rejected(&dir, &r, &r.sign(&c)).await;
}

#[tokio::test]
async fn jwt_signature_must_verify() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let other = Identity::generate();
    let mut c = r.new_invite_claims(&dir);
    // Claims name the registered key, but another key signed them.
    invite_rejected(&dir, &r, &other.sign_jwt(&jwt_header(), &c)).await;
    // A valid token whose claims were altered after signing.
    let token = r.sign(&c);
    c["sub"] = json!(invite_key());
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = base64_url(&c.to_string());
    invite_rejected(&dir, &r, &parts.join(".")).await;
}

fn base64_url(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn jwt_aud_must_be_this_server() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["aud"] = json!("https://keys.walletconnect.com");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c.as_object_mut().unwrap().remove("aud");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    // A trailing slash is the same URL.
    c["aud"] = json!(format!("{}/", dir.aud()));
    dir.post_invite(&r.sign(&c)).await.value();
}

#[tokio::test]
async fn jwt_iat_must_not_be_in_the_future() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["iat"] = json!(now_s() + 10 * MINUTE);
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    // Within the 5-minute skew is fine.
    c["iat"] = json!(now_s() + 2 * MINUTE);
    dir.post_invite(&r.sign(&c)).await.value();
}

#[tokio::test]
async fn jwt_exp_must_not_be_past() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["iat"] = json!(now_s() - 60 * MINUTE);
    c["exp"] = json!(now_s() - 10 * MINUTE);
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c.as_object_mut().unwrap().remove("exp");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c["exp"] = json!(now_s() - 2 * MINUTE);
    dir.post_invite(&r.sign(&c)).await.value();
}

#[tokio::test]
async fn jwt_lifetime_is_at_most_30_days() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["exp"] = json!(now_s() + 31 * DAY);
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c["exp"] = json!(now_s() + 29 * DAY);
    dir.post_invite(&r.sign(&c)).await.value();
}

/// `exp - iat` must not overflow: the widest possible lifetime wrapped to a
/// negative one (accepted in release builds, a panic in debug builds).
#[tokio::test]
async fn jwt_lifetime_overflow_is_rejected() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["iat"] = json!(i64::MIN);
    c["exp"] = json!(i64::MAX);
    invite_rejected(&dir, &r, &r.sign(&c)).await;
}

#[tokio::test]
async fn jwt_millisecond_iat_and_exp_are_accepted() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["iat"] = json!(now_s() * 1000);
    c["exp"] = json!((now_s() + 60 * MINUTE) * 1000);
    dir.post_invite(&r.sign(&c)).await.value();
    assert_eq!(
        dir.invite_of(&r.wallet).await.unwrap(),
        c["sub"].as_str().unwrap()
    );
    // Milliseconds are still bound by the lifetime rule.
    c["exp"] = json!((now_s() + 31 * DAY) * 1000);
    dir.post_invite(&r.sign(&c)).await.rejects_token();
}

#[tokio::test]
async fn jwt_act_must_match_the_route() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    c["act"] = json!("unregister_invite");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c.as_object_mut().unwrap().remove("act");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    let register = r.sign(&r.new_invite_claims(&dir));
    dir.delete_invite(&register).await.rejects_token();
    dir.delete_identity(&register).await.rejects_token();
    let unregister_invite = r.sign(&r.claims(&dir, "unregister_invite"));
    dir.delete_identity(&unregister_invite)
        .await
        .rejects_token();
    r.unchanged(&dir).await;
}

#[tokio::test]
async fn jwt_pkh_must_be_an_eip155_did_pkh() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.new_invite_claims(&dir);
    for bad in [
        "did:pkh:eip155:1:0x1234",
        "eip155:1:0x0000000000000000000000000000000000000000",
        "did:pkh:solana:1:abc",
    ] {
        c["pkh"] = json!(bad);
        invite_rejected(&dir, &r, &r.sign(&c)).await;
    }
    c.as_object_mut().unwrap().remove("pkh");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
}

#[tokio::test]
async fn jwt_sub_for_post_invite_must_be_an_x25519_did_key() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let mut c = r.claims(&dir, "register_invite");
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c["sub"] = json!(hex::encode(rand::random::<[u8; 32]>()));
    invite_rejected(&dir, &r, &r.sign(&c)).await;
    c["sub"] = json!(Identity::generate().did);
    invite_rejected(&dir, &r, &r.sign(&c)).await;
}

#[tokio::test]
async fn jwt_iss_must_be_registered_to_the_pkh_account() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let stranger = Identity::generate();
    let mut c = r.new_invite_claims(&dir);
    c["iss"] = json!(stranger.did);
    let token = stranger.sign_jwt(&jwt_header(), &c);
    dir.post_invite(&token).await.fails(401, "unauthorized");
    // A key registered to another account does not count either.
    let other = Registered::new(&dir).await;
    let mut c = other.new_invite_claims(&dir);
    c["pkh"] = json!(r.wallet.pkh());
    dir.post_invite(&other.sign(&c))
        .await
        .fails(401, "unauthorized");
    let mut c = other.claims(&dir, "unregister_invite");
    c["pkh"] = json!(r.wallet.pkh());
    dir.delete_invite(&other.sign(&c))
        .await
        .fails(401, "unauthorized");
    let mut c = other.claims(&dir, "unregister_identity");
    c["pkh"] = json!(r.wallet.pkh());
    dir.delete_identity(&other.sign(&c))
        .await
        .fails(401, "unauthorized");
    r.unchanged(&dir).await;
    other.unchanged(&dir).await;
}

// ---- CACAO rules (POST /identity) -------------------------------------------

/// Posts `cacao`, expects a 400 with `name`, and checks the identity key
/// was not registered.
async fn identity_rejected(
    dir: &Directory,
    cacao: &Value,
    name: &str,
    identity: &Identity,
) -> Value {
    let reply = dir.post_identity(cacao).await;
    reply.fails(400, name);
    assert!(!dir.has_identity(identity).await);
    reply.body["error"]["message"].clone()
}

fn fresh() -> (Wallet, Identity) {
    (Wallet::generate(), Identity::generate())
}

#[tokio::test]
async fn cacao_header_must_be_eip4361() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut cacao = wallet.cacao(&identity);
    cacao["h"]["t"] = json!("caip122");
    identity_rejected(&dir, &cacao, "cacao", &identity).await;
}

#[tokio::test]
async fn cacao_version_must_be_1() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut payload = wallet.payload(&identity);
    payload.version = "2".into();
    identity_rejected(&dir, &wallet.sign(payload), "cacao", &identity).await;
}

#[tokio::test]
async fn cacao_fields_must_not_contain_line_breaks() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut payload = wallet.payload(&identity);
    payload.statement = Some("line one\nURI: https://evil.example".into());
    identity_rejected(&dir, &wallet.sign(payload), "cacao", &identity).await;
    let mut payload = wallet.payload(&identity);
    payload.nonce = "abc\r".into();
    identity_rejected(&dir, &wallet.sign(payload), "cacao", &identity).await;
    let mut payload = wallet.payload(&identity);
    payload.resources = Some(vec!["https://a.example\n- https://b.example".into()]);
    identity_rejected(&dir, &wallet.sign(payload), "cacao", &identity).await;
}

#[tokio::test]
async fn cacao_exp_must_be_in_the_future() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut payload = wallet.payload(&identity);
    payload.exp = Some((chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339());
    identity_rejected(&dir, &wallet.sign(payload.clone()), "cacao", &identity).await;
    payload.exp = Some((chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339());
    dir.post_identity(&wallet.sign(payload)).await.value();
}

#[tokio::test]
async fn cacao_nbf_must_be_in_the_past() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut payload = wallet.payload(&identity);
    payload.nbf = Some((chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339());
    identity_rejected(&dir, &wallet.sign(payload.clone()), "cacao", &identity).await;
    payload.nbf = Some((chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339());
    dir.post_identity(&wallet.sign(payload)).await.value();
}

#[tokio::test]
async fn cacao_must_be_signed_by_the_iss_account() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let impostor = Wallet::generate();
    identity_rejected(
        &dir,
        &impostor.sign(wallet.payload(&identity)),
        "cacao",
        &identity,
    )
    .await;
    // A signature over different text (here: another nonce) fails too.
    let mut cacao = wallet.cacao(&identity);
    cacao["p"]["nonce"] = json!("0000");
    identity_rejected(&dir, &cacao, "cacao", &identity).await;
}

#[tokio::test]
async fn cacao_eip1271_is_unsupported() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut cacao = wallet.cacao(&identity);
    cacao["s"]["t"] = json!("eip1271");
    let message = identity_rejected(&dir, &cacao, "cacao", &identity).await;
    assert_eq!(message, "Unsupported signature type");
}

#[tokio::test]
async fn cacao_identity_key_from_aud_query_parameter() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let decoy = Identity::generate();
    let mut payload = wallet.payload(&identity);
    payload.aud = format!(
        "https://identity.example.test/?walletconnect_identity_key={}",
        identity.did
    );
    payload.resources = Some(vec![decoy.did.clone()]);
    dir.post_identity(&wallet.sign(payload)).await.value();
    assert!(dir.has_identity(&identity).await);
    assert!(!dir.has_identity(&decoy).await);
}

#[tokio::test]
async fn cacao_identity_key_from_aud() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let decoy = Identity::generate();
    let mut payload = wallet.payload(&identity);
    payload.resources = Some(vec![decoy.did.clone()]);
    dir.post_identity(&wallet.sign(payload)).await.value();
    assert!(dir.has_identity(&identity).await);
    assert!(!dir.has_identity(&decoy).await);
}

#[tokio::test]
async fn cacao_identity_key_from_resources() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut payload = wallet.payload(&identity);
    payload.aud = "https://keys.example.test".into();
    payload.statement = None;
    payload.resources = Some(vec![identity.did.clone(), "https://other.example".into()]);
    dir.post_identity(&wallet.sign(payload)).await.value();
    assert!(dir.has_identity(&identity).await);
}

#[tokio::test]
async fn cacao_identity_key_must_be_ed25519() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let x25519 = invite_key();
    let mut payload = wallet.payload(&identity);
    payload.aud = x25519.clone();
    identity_rejected(&dir, &wallet.sign(payload), "did", &identity).await;
    dir.get_identity(&x25519)
        .await
        .fails(404, "Identity key not found");
    let mut payload = wallet.payload(&identity);
    payload.aud = "https://keys.example.test".into();
    payload.resources = None;
    identity_rejected(&dir, &wallet.sign(payload), "did", &identity).await;
}

/// What WalletConnect's recap registration sends: `aud` names the identity
/// key in its query, `uri` repeats `aud`, the last resource is a ReCap, and
/// other payload fields may come along. `uri` is kept; unknown fields are
/// dropped (they are not signed); a `uri` other than `aud` is refused.
#[tokio::test]
async fn cacao_recap_registration_with_uri_and_unknown_fields() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let recap = json!({"att": {"https://notify.example/all-apps":
        {"manage/all-apps-notifications": [{}]}}});
    let aud = format!(
        "https://app.example.test?walletconnect_identity_key={}",
        identity.did
    );
    let mut payload = wallet.payload(&identity);
    payload.aud = aud.clone();
    payload.statement = None;
    payload.resources = Some(vec![
        "https://keys.example.test".into(),
        format!("urn:recap:{}", base64_url(&recap.to_string())),
    ]);

    let mut other = payload.clone();
    other.uri = Some("https://evil.example".into());
    let shown = None; // whatever it showed: a foreign `uri` is refused first
    identity_rejected(&dir, &wallet.sign_showing(other, shown), "cacao", &identity).await;

    payload.uri = Some(aud);
    // What the wallet shows for that ReCap, as `@walletconnect/utils`
    // words it (docs/directory.md, CACAO rule 6).
    let shown = "I further authorize the stated URI to perform the following actions on my \
                 behalf: (1) 'manage': 'all-apps-notifications' for \
                 'https://notify.example/all-apps'.";
    let cacao = wallet.sign_showing(payload, Some(shown));
    let mut sent = cacao.clone();
    sent["p"]["chainId"] = json!("eip155:1");
    sent["p"]["type"] = json!("eip4361");
    dir.post_identity(&sent).await.value();
    let resolved = dir.get_identity(identity.public_key()).await;
    assert_eq!(resolved.value()["cacao"], cacao);
}

// ---- signature edge cases (docs/directory.md, verification rules) ----------

/// Ed25519's neutral point: a public key of small order, for which anyone
/// can forge a signature (R = the neutral point, s = 0 passes the plain
/// check). Rule 4 (`verify_strict`) refuses it even when a wallet bound the
/// key, so the forged token changes nothing.
#[tokio::test]
async fn small_order_identity_keys_cannot_sign() {
    let (_server, dir) = start().await;
    let wallet = Wallet::generate();
    let mut neutral = [0u8; 32];
    neutral[0] = 1;
    let small = did_key(ED25519_PUB, &neutral);
    // The wallet binds it: registration decodes the key, nothing more.
    let mut payload = wallet.payload(&Identity::generate());
    payload.aud = small.clone();
    dir.post_identity(&wallet.sign(payload)).await.value();
    let mut c = claims(
        &Identity::generate(),
        &wallet,
        &dir.aud(),
        "register_invite",
    );
    c["iss"] = json!(small);
    c["sub"] = json!(invite_key());
    let forged_signature = URL_SAFE_NO_PAD.encode([neutral, [0u8; 32]].concat());
    let forged = format!("{}.{forged_signature}", signing_input(&jwt_header(), &c));
    dir.post_invite(&forged).await.rejects_token();
    assert_eq!(dir.invite_of(&wallet).await, None, "nothing published");
}

/// Ed25519's group order L, little-endian.
const ED25519_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `s + L`: the same scalar, written non-canonically (it still fits in 32
/// bytes, since s < L < 2^253).
fn plus_order(s: &[u8]) -> Vec<u8> {
    let mut carry = 0u16;
    let mut out = Vec::with_capacity(32);
    for (a, b) in s.iter().zip(ED25519_ORDER) {
        let sum = u16::from(*a) + u16::from(b) + carry;
        out.push(sum as u8);
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// A valid signature with its `s` replaced by `s + L` (non-canonical,
/// malleable) is refused; the canonical one is then accepted.
#[tokio::test]
async fn non_canonical_ed25519_signatures_are_refused() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let c = r.new_invite_claims(&dir);
    let token = r.sign(&c);
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let malleated = [&signature[..32], plus_order(&signature[32..]).as_slice()].concat();
    let malleated = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(malleated));
    invite_rejected(&dir, &r, &malleated).await;
    dir.post_invite(&token).await.value();
    assert_eq!(
        dir.invite_of(&r.wallet).await,
        c["sub"].as_str().map(String::from)
    );
}

/// Some wallets emit the high-S twin of a signature (s' = n − s, with the
/// other parity); docs/directory.md: low-S normalised, so it binds the key
/// as the low-S one would. With the parity left unflipped it names another
/// signer and is refused.
#[tokio::test]
async fn high_s_wallet_signatures_are_normalised() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let payload = wallet.payload(&identity);
    let low = wallet.personal_sign(&siwe_text(&payload, payload.statement.as_deref()));
    let signature = k256::ecdsa::Signature::from_slice(&low[..64]).unwrap();
    assert!(signature.normalize_s().is_none(), "k256 signs low-S");
    let (r, s) = signature.split_scalars();
    let high_s: k256::Scalar = -*s.as_ref();
    let twin = k256::ecdsa::Signature::from_scalars(r.to_bytes(), high_s.to_bytes()).unwrap();
    assert!(twin.normalize_s().is_some(), "the twin is high-S");
    let mut high = [0u8; 65];
    high[..64].copy_from_slice(&twin.to_bytes());
    high[64] = low[64];
    identity_rejected(&dir, &cacao(&payload, &high), "cacao", &identity).await;
    high[64] = 27 + 28 - low[64]; // the other parity
    dir.post_identity(&cacao(&payload, &high)).await.value();
    assert!(dir.has_identity(&identity).await);
}

// ---- concurrency (docs/directory.md, did-JWT rule 10) -----------------------

/// Two identity keys of one account removed at the same time: whichever
/// commits last removes the last key, so the account's invite key goes too.
/// Run a few times so the two requests overlap.
#[tokio::test]
async fn concurrent_identity_deletions_leave_no_orphan_invite() {
    let (_server, dir) = start_with(|s| s.directory_writes_per_minute = 10_000).await;
    for round in 0..10 {
        let r = Registered::new(&dir).await;
        let second = Identity::generate();
        dir.post_identity(&r.wallet.cacao(&second)).await.value();
        let first = r.sign(&r.claims(&dir, "unregister_identity"));
        let c = claims(&second, &r.wallet, &dir.aud(), "unregister_identity");
        let other = second.sign_jwt(&jwt_header(), &c);
        let (a, b) = tokio::join!(dir.delete_identity(&first), dir.delete_identity(&other));
        a.value();
        b.value();
        assert!(!dir.has_identity(&r.identity).await && !dir.has_identity(&second).await);
        assert_eq!(
            dir.invite_of(&r.wallet).await,
            None,
            "orphan in round {round}"
        );
    }
}

/// Publishing an invite key while the account's only identity key is being
/// removed: either the publication comes first and goes with the key, or
/// it is refused (401); no invite key outlives every identity.
#[tokio::test]
async fn an_invite_published_during_the_last_identity_deletion_is_no_orphan() {
    let (_server, dir) = start_with(|s| s.directory_writes_per_minute = 10_000).await;
    for round in 0..10 {
        let r = Registered::new(&dir).await;
        let publish = r.sign(&r.new_invite_claims(&dir));
        let remove = r.sign(&r.claims(&dir, "unregister_identity"));
        let (published, removed) =
            tokio::join!(dir.post_invite(&publish), dir.delete_identity(&remove));
        removed.value();
        if published.status != 200 {
            published.fails(401, "unauthorized");
        }
        assert_eq!(
            dir.invite_of(&r.wallet).await,
            None,
            "orphan in round {round}"
        );
    }
}

// ---- revocation, limits, storage ------------------------------------------

/// The CACAO of a revoked key is public: replaying it must not bring the
/// key back (nor let it publish invite keys again). A CACAO the wallet
/// issues after the revocation does.
#[tokio::test]
async fn a_revoked_key_comes_back_only_with_a_newer_cacao() {
    let (_server, dir) = start().await;
    let r = Registered::new(&dir).await;
    let old = r.wallet.cacao(&r.identity);
    dir.post_identity(&old).await.value();
    dir.delete_identity(&r.sign(&r.claims(&dir, "unregister_identity")))
        .await
        .value();

    dir.post_identity(&old).await.fails(409, "conflict");
    assert!(!dir.has_identity(&r.identity).await);
    dir.post_invite(&r.sign(&r.new_invite_claims(&dir)))
        .await
        .fails(401, "unauthorized");
    assert_eq!(dir.invite_of(&r.wallet).await, None);

    let mut newer = r.wallet.payload(&r.identity);
    newer.iat = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    dir.post_identity(&r.wallet.sign(newer)).await.value();
    dir.post_invite(&r.sign(&r.new_invite_claims(&dir)))
        .await
        .value();
}

#[tokio::test]
async fn cacao_iat_must_not_be_in_the_future() {
    let (_server, dir) = start().await;
    let (wallet, identity) = fresh();
    let mut payload = wallet.payload(&identity);
    payload.iat = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    identity_rejected(&dir, &wallet.sign(payload.clone()), "cacao", &identity).await;
    payload.iat = "yesterday".into();
    identity_rejected(&dir, &wallet.sign(payload.clone()), "cacao", &identity).await;
    payload.iat = (chrono::Utc::now() + chrono::Duration::minutes(4)).to_rfc3339();
    dir.post_identity(&wallet.sign(payload)).await.value();
}

#[tokio::test]
async fn an_account_holds_at_most_100_identity_keys() {
    let (_server, dir) = start_with(|s| s.directory_writes_per_minute = 1000).await;
    let r = Registered::new(&dir).await;
    for _ in 1..100 {
        dir.post_identity(&r.wallet.cacao(&Identity::generate()))
            .await
            .value();
    }
    let extra = Identity::generate();
    dir.post_identity(&r.wallet.cacao(&extra))
        .await
        .fails(409, "conflict");
    assert!(!dir.has_identity(&extra).await);
    // Re-registering a key the account has is not a new key.
    dir.post_identity(&r.wallet.cacao(&r.identity))
        .await
        .value();
    // Removing one makes room for one.
    dir.delete_identity(&r.sign(&r.claims(&dir, "unregister_identity")))
        .await
        .value();
    dir.post_identity(&r.wallet.cacao(&extra)).await.value();
    dir.post_identity(&r.wallet.cacao(&Identity::generate()))
        .await
        .fails(409, "conflict");
}

#[tokio::test]
async fn directory_writes_are_limited_per_client_address() {
    let (server, dir) = start_with(|s| s.directory_writes_per_minute = 4).await;
    let r = Registered::new(&dir).await; // two writes
    let (wallet, identity) = fresh();
    dir.post_invite("not.a.token").await.rejects_token(); // failures count too
    dir.post_identity(&wallet.cacao(&identity)).await.value();
    let late = Identity::generate();
    dir.post_identity(&wallet.cacao(&late))
        .await
        .fails(429, "too_many_requests");
    dir.delete_identity(&r.sign(&r.claims(&dir, "unregister_identity")))
        .await
        .fails(429, "too_many_requests");
    assert!(
        !dir.has_identity(&late).await,
        "a refused write changes nothing"
    );
    r.unchanged(&dir).await; // reads are not limited

    // Another client address has its own allowance.
    let elsewhere = Directory {
        base: server.base.clone(),
        http: reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .unwrap(),
    };
    elsewhere.post_identity(&wallet.cacao(&late)).await.value();
}

/// Stores written before one record per (account, key) kept a JSON list per
/// account in `dir_accounts`; they are migrated when the server opens them.
#[tokio::test]
async fn older_stores_keep_their_account_keys() {
    let data = tempfile::tempdir().unwrap();
    let wallet = Wallet::generate();
    let (first, second) = (Identity::generate(), Identity::generate());
    let account = wallet.account();
    let invite = invite_key();
    let records: Vec<(String, String)> = [&first, &second]
        .iter()
        .map(|identity| {
            let record = json!({"account": account, "cacao": wallet.cacao(identity)});
            (identity.did.clone(), record.to_string())
        })
        .collect();
    let list = json!([first.did, second.did]).to_string();
    // The older layout, written with raw sled as an older build did, into
    // a store that is closed again (releasing the database lock).
    let path = data.path().to_path_buf();
    let (account_, invite_) = (account.clone(), invite.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            drop(keystrate::store::Store::open(&path).unwrap());
            let config = keystrate::store::tuned_sled(&path, keystrate::store::DEFAULT_CACHE_MB);
            // sled lets go of its lock a moment after the store is dropped.
            let mut attempts = 0;
            let store = loop {
                match config.open() {
                    Ok(db) => break db,
                    Err(_) if attempts < 250 => {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => panic!("the closed store stays locked: {e}"),
                }
            };
            let tree = |name: &str| store.open_tree(name).unwrap();
            for (did, record) in &records {
                tree("dir_identities")
                    .insert(did.as_bytes(), record.as_bytes())
                    .unwrap();
            }
            tree("dir_accounts")
                .insert(account_.as_bytes(), list.as_bytes())
                .unwrap();
            tree("dir_invites")
                .insert(account_.as_bytes(), invite_.as_bytes())
                .unwrap();
            store.flush().unwrap();
        });
    })
    .join()
    .unwrap();

    // The closed store's storage threads let go of sled's lock a moment
    // after it is dropped (on a loaded machine, not at once): wait for that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let running = loop {
        let started = keystrate::start(Config {
            data: data.path().to_path_buf(),
            serve: ServeArgs {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..ServeArgs::default()
            },
        })
        .await;
        match started {
            Ok(running) => break running,
            Err(e) if e.to_string().contains("in use by another") => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "store never released: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the older store opens: {e:?}"),
        }
    };
    let dir = Directory {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
    };
    assert_eq!(
        dir.invite_of(&wallet).await.as_deref(),
        Some(invite.as_str())
    );
    // Both keys still act for the account, and the count is right: the
    // invite key goes only with the second of them.
    let unregister = |identity: &Identity| {
        identity.sign_jwt(
            &jwt_header(),
            &claims(identity, &wallet, &dir.aud(), "unregister_identity"),
        )
    };
    dir.delete_identity(&unregister(&first)).await.value();
    assert_eq!(
        dir.invite_of(&wallet).await.as_deref(),
        Some(invite.as_str())
    );
    dir.delete_identity(&unregister(&second)).await.value();
    assert_eq!(dir.invite_of(&wallet).await, None);
    running.shutdown().await;
}
