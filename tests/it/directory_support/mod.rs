//! Helpers for the key directory tests: identity and wallet keys, signed
//! CACAOs and did-JWTs, and a client for the six routes that checks the
//! response envelope on every call.
//!
//! Everything a request carries is made here with the crates directly
//! (ed25519-dalek, k256, sha3, bs58) and the SIWE text is written out from
//! docs/directory.md's template, never with the server's own code: a
//! mistake shared by the server and its tests would pass unseen.
//! `known_answers_reproduce_the_vectors` (directory.rs) checks these
//! helpers against the known-answer vectors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer;
use serde::Serialize;
use serde_json::{json, Value};
use sha3::{Digest, Keccak256};

pub const MINUTE: i64 = 60;
pub const DAY: i64 = 24 * 60 * MINUTE;

/// Multicodec prefixes of the two key types a `did:key` here names.
pub const ED25519_PUB: [u8; 2] = [0xed, 0x01];
pub const X25519_PUB: [u8; 2] = [0xec, 0x01];

pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The shared known-answer vectors.
pub fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/keys-directory.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors file")).unwrap()
}

/// `did:key:z…`: multibase base58btc of the multicodec prefix and the key.
pub fn did_key(codec: [u8; 2], key: &[u8]) -> String {
    let bytes = [&codec[..], key].concat();
    format!("did:key:z{}", bs58::encode(bytes).into_string())
}

/// An Ed25519 identity key.
pub struct Identity {
    pub key: ed25519_dalek::SigningKey,
    /// `did:key:z6Mk…`
    pub did: String,
}

impl Identity {
    /// A fresh key for one test.
    pub fn generate() -> Identity {
        Identity::from_key(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key of a 32-byte seed (the vectors').
    pub fn from_seed_hex(seed: &str) -> Identity {
        let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
        Identity::from_key(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    fn from_key(key: ed25519_dalek::SigningKey) -> Identity {
        let did = did_key(ED25519_PUB, key.verifying_key().as_bytes());
        Identity { key, did }
    }

    /// The multibase form the Keys Server uses in `?publicKey=`.
    pub fn public_key(&self) -> &str {
        self.did.strip_prefix("did:key:").unwrap()
    }

    /// A compact JWT over `header` and `claims`, signed with this key.
    pub fn sign_jwt(&self, header: &Value, claims: &Value) -> String {
        let signed = signing_input(header, claims);
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// A JWT's signed part: `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A fresh X25519 invite key (random bytes: the directory never uses it
/// for key agreement, only decodes it).
pub fn invite_key() -> String {
    did_key(X25519_PUB, &rand::random::<[u8; 32]>())
}

/// Ethereum address: the last 20 bytes of keccak256 of the uncompressed
/// public key without its `0x04` tag, lowercase hex.
pub fn address_of(key: &k256::ecdsa::VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

/// keccak256 of the EIP-191 `personal_sign` envelope of `message`.
pub fn personal_sign_hash(message: &str) -> [u8; 32] {
    let envelope = format!("\x19Ethereum Signed Message:\n{}{message}", message.len());
    Keccak256::digest(envelope.as_bytes()).into()
}

/// A CACAO payload as a wallet sends it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub domain: String,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    pub aud: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub version: String,
    pub nonce: String,
    pub iat: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
}

/// The EIP-4361 text a wallet shows for `p`, with `statement` as the line it
/// displays (`p.statement`, except for ReCap resources). The template of
/// docs/directory.md: two blank lines before `URI:` without a statement,
/// no trailing newline; the address and chain as `p.iss` spells them.
pub fn siwe_text(p: &Payload, statement: Option<&str>) -> String {
    let (chain, address) = p
        .iss
        .strip_prefix("did:pkh:eip155:")
        .and_then(|rest| rest.split_once(':'))
        .expect("an eip155 did:pkh");
    let statement = statement.map(|s| format!("{s}\n")).unwrap_or_default();
    let mut text = format!(
        "{domain} wants you to sign in with your Ethereum account:\n\
         {address}\n\
         \n\
         {statement}\
         \n\
         URI: {aud}\n\
         Version: {version}\n\
         Chain ID: {chain}\n\
         Nonce: {nonce}\n\
         Issued At: {iat}",
        domain = p.domain,
        aud = p.aud,
        version = p.version,
        nonce = p.nonce,
        iat = p.iat,
    );
    for (label, value) in [
        ("Expiration Time", &p.exp),
        ("Not Before", &p.nbf),
        ("Request ID", &p.request_id),
    ] {
        if let Some(value) = value {
            text += &format!("\n{label}: {value}");
        }
    }
    if let Some(resources) = p.resources.as_ref().filter(|r| !r.is_empty()) {
        text += "\nResources:";
        for resource in resources {
            text += &format!("\n- {resource}");
        }
    }
    text
}

/// A secp256k1 wallet.
pub struct Wallet {
    pub key: k256::ecdsa::SigningKey,
    /// `0x…`, lowercase.
    pub address: String,
}

impl Wallet {
    /// A fresh wallet for one test.
    pub fn generate() -> Wallet {
        Wallet::from_key(k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// The wallet of a private key in hex (the vectors').
    pub fn from_key_hex(hex_key: &str) -> Wallet {
        let bytes = hex::decode(hex_key).unwrap();
        Wallet::from_key(k256::ecdsa::SigningKey::from_slice(&bytes).unwrap())
    }

    fn from_key(key: k256::ecdsa::SigningKey) -> Wallet {
        let address = address_of(key.verifying_key());
        Wallet { key, address }
    }

    /// `did:pkh:eip155:1:0x…` with the address hex in upper case, to check
    /// that addresses compare case-insensitively.
    pub fn pkh(&self) -> String {
        format!("did:pkh:eip155:1:0x{}", self.address[2..].to_uppercase())
    }

    /// The canonical CAIP-10 account.
    pub fn account(&self) -> String {
        format!("eip155:1:{}", self.address)
    }

    /// A CACAO payload naming `identity` in `aud`, adjusted by `tweak`.
    pub fn payload(&self, identity: &Identity) -> Payload {
        Payload {
            domain: "app.example.test".into(),
            iss: self.pkh(),
            statement: Some("Register my identity key".into()),
            aud: identity.did.clone(),
            uri: None,
            version: "1".into(),
            nonce: hex::encode(rand::random::<[u8; 8]>()),
            iat: chrono::Utc::now().to_rfc3339(),
            exp: None,
            nbf: None,
            request_id: None,
            resources: Some(vec!["https://keys.example.test".into()]),
        }
    }

    /// The 65-byte EIP-191 signature (`r ‖ s ‖ v`, v = 27 + parity) of
    /// `message`, low-S as k256 makes it.
    pub fn personal_sign(&self, message: &str) -> [u8; 65] {
        let hash = personal_sign_hash(message);
        let (signature, recovery) = self.key.sign_prehash_recoverable(&hash).unwrap();
        let mut bytes = [0u8; 65];
        bytes[..64].copy_from_slice(&signature.to_bytes());
        bytes[64] = recovery.to_byte() + 27;
        bytes
    }

    /// `payload` signed (EIP-191 over its SIWE text) as a CACAO.
    pub fn sign(&self, payload: Payload) -> Value {
        let shown = payload.statement.clone();
        self.sign_showing(payload, shown.as_deref())
    }

    /// Like [`Wallet::sign`], over a text that shows `statement` (a ReCap
    /// extends the payload's).
    pub fn sign_showing(&self, payload: Payload, statement: Option<&str>) -> Value {
        let signature = self.personal_sign(&siwe_text(&payload, statement));
        cacao(&payload, &signature)
    }

    /// The standard CACAO binding `identity` to this wallet.
    pub fn cacao(&self, identity: &Identity) -> Value {
        self.sign(self.payload(identity))
    }
}

/// A CACAO of `payload` with an EIP-191 `signature`.
pub fn cacao(payload: &Payload, signature: &[u8; 65]) -> Value {
    json!({
        "h": {"t": "eip4361"},
        "p": payload,
        "s": {"t": "eip191", "s": format!("0x{}", hex::encode(signature))},
    })
}

/// Standard did-JWT claims for `act` by `identity` on behalf of `wallet`,
/// valid for an hour on the server at `aud`.
pub fn claims(identity: &Identity, wallet: &Wallet, aud: &str, act: &str) -> Value {
    let now = now_s();
    json!({
        "iss": identity.did,
        "aud": aud,
        "iat": now,
        "exp": now + 60 * MINUTE,
        "pkh": wallet.pkh(),
        "act": act,
    })
}

pub fn jwt_header() -> Value {
    json!({"alg": "EdDSA", "typ": "JWT"})
}

/// One response, with the envelope already checked for shape.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn value(&self) -> &Value {
        assert_eq!(self.status, 200, "expected success: {self:?}");
        assert_eq!(self.body["status"], "SUCCESS");
        &self.body["value"]
    }

    /// Asserts a FAILURE envelope with this status and error name.
    pub fn fails(&self, status: u16, name: &str) -> &Reply {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["status"], "FAILURE", "{self:?}");
        assert_eq!(self.body["error"]["name"], name, "{self:?}");
        self
    }

    /// Asserts a 400 from did-JWT verification (`jwt_verification` or `did`).
    pub fn rejects_token(&self) {
        assert_eq!(self.status, 400, "{self:?}");
        let name = self.body["error"]["name"].as_str().unwrap_or_default();
        assert!(name == "jwt_verification" || name == "did", "{self:?}");
    }
}

/// A client for the directory routes of one server.
pub struct Directory {
    pub base: String,
    pub http: reqwest::Client,
}

impl Directory {
    /// The `aud` this server requires.
    pub fn aud(&self) -> String {
        self.base.clone()
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 3, "envelope has status, error, value: {text}");
        let success = body["status"] == "SUCCESS";
        assert_eq!(success, status == 200, "{status} {text}");
        if success {
            assert!(body["error"].is_null(), "{text}");
        } else {
            assert!(body["value"].is_null(), "{text}");
            assert!(body["error"]["name"].is_string() && body["error"]["message"].is_string());
        }
        Reply { status, body }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_identity(&self, cacao: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url("/identity"))
                .json(&json!({"cacao": cacao})),
        )
        .await
    }

    pub async fn get_identity(&self, public_key: &str) -> Reply {
        self.send(
            self.http
                .get(self.url("/identity"))
                .query(&[("publicKey", public_key)]),
        )
        .await
    }

    pub async fn delete_identity(&self, id_auth: &str) -> Reply {
        self.send(
            self.http
                .delete(self.url("/identity"))
                .json(&json!({"idAuth": id_auth})),
        )
        .await
    }

    pub async fn post_invite(&self, id_auth: &str) -> Reply {
        self.send(
            self.http
                .post(self.url("/invite"))
                .json(&json!({"idAuth": id_auth})),
        )
        .await
    }

    pub async fn get_invite(&self, account: &str) -> Reply {
        self.send(
            self.http
                .get(self.url("/invite"))
                .query(&[("account", account)]),
        )
        .await
    }

    pub async fn delete_invite(&self, id_auth: &str) -> Reply {
        self.send(
            self.http
                .delete(self.url("/invite"))
                .json(&json!({"idAuth": id_auth})),
        )
        .await
    }

    /// The account's invite key, or `None` when it has none.
    pub async fn invite_of(&self, wallet: &Wallet) -> Option<String> {
        let reply = self.get_invite(&wallet.account()).await;
        if reply.status == 404 {
            reply.fails(404, "Invite key not found");
            return None;
        }
        Some(reply.value()["inviteKey"].as_str().unwrap().to_string())
    }

    /// Whether the identity key resolves.
    pub async fn has_identity(&self, identity: &Identity) -> bool {
        let reply = self.get_identity(identity.public_key()).await;
        if reply.status == 404 {
            reply.fails(404, "Identity key not found");
            return false;
        }
        reply.value();
        true
    }
}

/// A wallet with one registered identity and a registered invite key.
pub struct Registered {
    pub wallet: Wallet,
    pub identity: Identity,
    pub invite: String,
}

impl Registered {
    pub async fn new(dir: &Directory) -> Registered {
        let wallet = Wallet::generate();
        let identity = Identity::generate();
        dir.post_identity(&wallet.cacao(&identity)).await.value();
        let invite = invite_key();
        let mut c = claims(&identity, &wallet, &dir.aud(), "register_invite");
        c["sub"] = json!(invite);
        dir.post_invite(&identity.sign_jwt(&jwt_header(), &c))
            .await
            .value();
        Registered {
            wallet,
            identity,
            invite,
        }
    }

    /// Claims for `act` by this identity and wallet.
    pub fn claims(&self, dir: &Directory, act: &str) -> Value {
        claims(&self.identity, &self.wallet, &dir.aud(), act)
    }

    /// Register-invite claims for a new invite key.
    pub fn new_invite_claims(&self, dir: &Directory) -> Value {
        let mut c = self.claims(dir, "register_invite");
        c["sub"] = json!(invite_key());
        c
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.identity.sign_jwt(&jwt_header(), claims)
    }

    /// Asserts that the identity and its invite key are still as registered.
    pub async fn unchanged(&self, dir: &Directory) {
        assert!(
            dir.has_identity(&self.identity).await,
            "identity still registered"
        );
        assert_eq!(
            dir.invite_of(&self.wallet).await.as_deref(),
            Some(self.invite.as_str())
        );
    }
}
