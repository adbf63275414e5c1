//! Keys and signed requests for the key directory (docs/directory.md), as a
//! chat client makes them: a wallet (secp256k1), an identity key (Ed25519)
//! that the wallet binds to its account with a CACAO (a Sign-In-With-Ethereum
//! message signed per EIP-191), an invite key (X25519), and the did-JWTs
//! (`idAuth`, EdDSA) that register and remove them.
//!
//! Prints shell assignments, so the docs' `curl` commands can use them:
//!
//!     eval "$(cargo run -q --example directory_keys -- "$KS")"
//!
//! The argument is the server's public URL: every did-JWT's `aud`. The
//! tokens are valid for an hour.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer;
use keystrate::directory::cacao::{self, Cacao, Header, Payload, Signature};
use keystrate::directory::did::{self, Account};
use keystrate::directory::siwe;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

/// An EdDSA did-JWT signed by the identity key.
fn did_jwt(identity: &ed25519_dalek::SigningKey, claims: &Value) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT"});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = identity.sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn main() -> Result<(), Error> {
    let server = std::env::args()
        .nth(1)
        .ok_or("usage: directory_keys <server public URL, e.g. http://127.0.0.1:7007>")?;
    let server = server.trim_end_matches('/');
    let mut rng = rand::rngs::OsRng;

    // The wallet and its CAIP-10 account.
    let wallet = k256::ecdsa::SigningKey::random(&mut rng);
    let address = cacao::address_of(wallet.verifying_key());
    let pkh = format!("did:pkh:eip155:1:{address}");
    let account = Account::from_pkh(&pkh)?;

    // The identity key, as a did:key, bound to the account by a CACAO whose
    // `aud` names it.
    let identity = ed25519_dalek::SigningKey::generate(&mut rng);
    let identity_did = did::encode_key(did::ED25519, identity.verifying_key().as_bytes());
    let payload = Payload {
        domain: "app.example.test".into(),
        iss: pkh.clone(),
        statement: Some("Register my identity key".into()),
        aud: identity_did.clone(),
        uri: None,
        version: "1".into(),
        nonce: hex::encode(rand::random::<[u8; 8]>()),
        iat: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        exp: None,
        nbf: None,
        request_id: None,
        resources: Some(vec![server.to_string()]),
    };
    // EIP-191 over the SIWE text; the signature is r ‖ s ‖ v (v = 27 + recovery id).
    let hash = cacao::eip191_hash(&siwe::message(&payload, &account));
    let (signature, recovery) = wallet.sign_prehash_recoverable(&hash)?;
    let mut signature = signature.to_bytes().to_vec();
    signature.push(recovery.to_byte() + 27);
    let cacao = Cacao {
        h: Header {
            t: "eip4361".into(),
        },
        p: payload,
        s: Signature {
            t: "eip191".into(),
            s: format!("0x{}", hex::encode(signature)),
            m: None,
        },
    };

    // The invite key, and the did-JWTs for the three signed routes.
    let invite_key = did::encode_key(did::X25519, &rand::random::<[u8; 32]>());
    let now = chrono::Utc::now().timestamp();
    let claims = |act: &str| {
        json!({"iss": identity_did, "aud": server, "iat": now, "exp": now + 3600,
               "pkh": pkh, "act": act})
    };
    let mut register = claims("register_invite");
    register["sub"] = json!(invite_key);

    let assignments = [
        ("ACCOUNT", account.canonical()),
        (
            "IDENTITY_KEY",
            identity_did.trim_start_matches("did:key:").to_string(),
        ),
        ("CACAO", serde_json::to_string(&cacao)?),
        ("INVITE_KEY", invite_key.clone()),
        ("REGISTER_INVITE", did_jwt(&identity, &register)),
        (
            "UNREGISTER_INVITE",
            did_jwt(&identity, &claims("unregister_invite")),
        ),
        (
            "UNREGISTER_IDENTITY",
            did_jwt(&identity, &claims("unregister_identity")),
        ),
    ];
    for (name, value) in assignments {
        // Single quotes keep the shell from reading anything inside.
        if value.contains('\'') {
            return Err(format!("{name} contains a quote").into());
        }
        println!("{name}='{value}'");
    }
    Ok(())
}
