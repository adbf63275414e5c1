//! CACAO (chain-agnostic capability object) verification for `POST /identity`:
//! a wallet signs a SIWE message whose URI or resources name an Ed25519
//! identity key, binding that key to the wallet's account.

use super::did::{self, Account};
use super::error::DirError;
use super::siwe;
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

/// Query parameter of `aud` that names the identity key (newer clients).
const IDENTITY_KEY_PARAM: &str = "walletconnect_identity_key";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cacao {
    pub h: Header,
    pub p: Payload,
    pub s: Signature,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CacaoHeader)]
pub struct Header {
    pub t: String,
}

/// The signed fields; optional ones are omitted from JSON when absent so a
/// stored CACAO reads back as it was sent. Unknown fields are dropped, as
/// the Keys Server does: the signature covers only the text rebuilt from
/// these, so nothing unsigned is stored or served back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CacaoPayload)]
pub struct Payload {
    pub domain: String,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    pub aud: String,
    /// Sent by recap registrations alongside `aud` and equal to it; the
    /// signed text shows `aud`, so a different `uri` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub version: String,
    pub nonce: String,
    pub iat: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<String>,
    #[serde(default, rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CacaoSignature)]
pub struct Signature {
    pub t: String,
    pub s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<String>,
}

/// Allowed clock difference between a wallet and the server for `p.iat`.
const ISSUED_AT_SKEW_MS: i64 = 5 * 60 * 1000;

/// What a valid CACAO proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The identity key as `did:key:z6Mk…`.
    pub identity_key: String,
    pub account: Account,
    /// `p.iat` in milliseconds: a revoked key comes back only with a CACAO
    /// issued after its revocation.
    pub issued_at_ms: i64,
}

/// Checks every rule of `docs/directory.md` for CACAOs, in the order a client
/// can most cheaply fix them, and returns the key-to-account binding.
pub fn verify(cacao: &Cacao, now_ms: i64) -> Result<Binding, DirError> {
    if cacao.h.t != "eip4361" {
        return Err(DirError::cacao(format!(
            "Unsupported header type {}",
            cacao.h.t
        )));
    }
    let p = &cacao.p;
    if p.version != "1" {
        return Err(DirError::cacao(format!(
            "Unsupported version {}",
            p.version
        )));
    }
    if fields(cacao).any(|f| f.contains(['\r', '\n'])) {
        return Err(DirError::cacao("A field contains a line break"));
    }
    if p.uri.as_ref().is_some_and(|uri| uri != &p.aud) {
        return Err(DirError::cacao("uri must equal aud"));
    }
    let issued_at_ms = check_validity_window(p, now_ms)?;
    let account = Account::from_pkh(&p.iss)?;
    if cacao.s.t != "eip191" {
        return Err(DirError::cacao("Unsupported signature type"));
    }
    let signer = recover_signer(&siwe::message(p, &account), &cacao.s.s)?;
    if !signer.eq_ignore_ascii_case(&account.address) {
        return Err(DirError::cacao("Invalid signature"));
    }
    let identity_key = identity_key(p)?;
    did::ed25519_key(&identity_key)?;
    Ok(Binding {
        identity_key,
        account,
        issued_at_ms,
    })
}

/// Every string of the CACAO; a CR or LF in any of them could smuggle lines
/// into the rebuilt SIWE text.
fn fields(cacao: &Cacao) -> impl Iterator<Item = &String> {
    let p = &cacao.p;
    [
        &cacao.h.t, &p.domain, &p.iss, &p.aud, &p.version, &p.nonce, &p.iat,
    ]
    .into_iter()
    .chain(
        [
            &p.statement,
            &p.uri,
            &p.exp,
            &p.nbf,
            &p.request_id,
            &cacao.s.m,
        ]
        .into_iter()
        .flatten(),
    )
    .chain(p.resources.iter().flatten())
    .chain([&cacao.s.t, &cacao.s.s])
}

/// Checks `iat`, `exp` and `nbf` against the clock; returns `iat` in ms.
fn check_validity_window(p: &Payload, now_ms: i64) -> Result<i64, DirError> {
    let issued_at = rfc3339_ms(&p.iat)?;
    if issued_at > now_ms + ISSUED_AT_SKEW_MS {
        return Err(DirError::cacao("Issued in the future"));
    }
    if let Some(exp) = &p.exp {
        if rfc3339_ms(exp)? <= now_ms {
            return Err(DirError::cacao("Expired"));
        }
    }
    if let Some(nbf) = &p.nbf {
        if rfc3339_ms(nbf)? > now_ms {
            return Err(DirError::cacao("Not yet valid"));
        }
    }
    Ok(issued_at)
}

fn rfc3339_ms(value: &str) -> Result<i64, DirError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| DirError::cacao(format!("Invalid timestamp {value}")))
}

/// The identity key, from (in order) `aud`'s `walletconnect_identity_key`
/// query parameter, `aud` itself when it is a did:key, or `resources[0]`.
fn identity_key(p: &Payload) -> Result<String, DirError> {
    let from_query = p.aud.split_once('?').and_then(|(_, query)| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .ok()?
            .into_iter()
            .find_map(|(k, v)| (k == IDENTITY_KEY_PARAM).then_some(v))
    });
    from_query
        .or_else(|| p.aud.starts_with("did:key:").then(|| p.aud.clone()))
        .or_else(|| p.resources.as_ref()?.first().cloned())
        .ok_or_else(|| DirError::did("The CACAO names no identity key"))
}

/// The `0x` address (lowercase) that produced `signature_hex` over the
/// EIP-191 personal message `message`.
pub fn recover_signer(message: &str, signature_hex: &str) -> Result<String, DirError> {
    let invalid = || DirError::cacao("Invalid signature");
    let bytes = hex::decode(signature_hex.strip_prefix("0x").unwrap_or(signature_hex))
        .map_err(|_| invalid())?;
    let [rs @ .., v] = <[u8; 65]>::try_from(bytes).map_err(|_| invalid())?;
    let parity = match v {
        0 | 1 => v,
        27 | 28 => v - 27,
        _ => return Err(invalid()),
    };
    let mut signature = EcdsaSignature::from_slice(&rs).map_err(|_| invalid())?;
    let mut recovery_id = RecoveryId::from_byte(parity).ok_or_else(invalid)?;
    // k256 accepts only low-S signatures; a high-S one is the same signature
    // with the other parity, which is how some wallets emit it.
    if let Some(normalised) = signature.normalize_s() {
        signature = normalised;
        recovery_id = RecoveryId::new(!recovery_id.is_y_odd(), recovery_id.is_x_reduced());
    }
    let key = VerifyingKey::recover_from_prehash(&eip191_hash(message), &signature, recovery_id)
        .map_err(|_| invalid())?;
    Ok(address_of(&key))
}

/// keccak256 of the EIP-191 "personal_sign" envelope of `message`.
pub fn eip191_hash(message: &str) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()));
    hasher.update(message);
    hasher.finalize().into()
}

/// Ethereum address: the last 20 bytes of keccak256 of the uncompressed
/// public key without its `0x04` tag.
pub fn address_of(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::test_vectors;

    #[test]
    fn vector_signatures_recover_the_documented_addresses() {
        for v in test_vectors()["cacao"].as_array().unwrap() {
            let cacao: Cacao = serde_json::from_value(v["cacao"].clone()).unwrap();
            let message = v["siwe_message"].as_str().unwrap();
            let signer = recover_signer(message, &cacao.s.s).unwrap();
            assert_eq!(signer, v["recovered_address"], "{}", v["name"]);
            let recovers_iss =
                signer.eq_ignore_ascii_case(&Account::from_pkh(&cacao.p.iss).unwrap().address);
            assert_eq!(recovers_iss, v["signature_recovers_iss"], "{}", v["name"]);
        }
    }

    #[test]
    fn vector_verdicts_hold() {
        let now = crate::engine::now_ms();
        for v in test_vectors()["cacao"].as_array().unwrap() {
            let cacao: Cacao = serde_json::from_value(v["cacao"].clone()).unwrap();
            let ok = verify(&cacao, now).is_ok();
            assert_eq!(ok, v["expect_post_identity_status"] == 200, "{}", v["name"]);
        }
    }

    #[test]
    fn synthetic_cacaos_bind_the_synthetic_identity() {
        let s = &test_vectors()["synthetic"];
        for name in ["cacao_no_statement", "cacao_with_statement"] {
            let cacao: Cacao = serde_json::from_value(s[name].clone()).unwrap();
            let binding = verify(&cacao, crate::engine::now_ms()).unwrap();
            assert_eq!(binding.identity_key, s["identity_did_key"]);
            assert_eq!(
                binding.account.canonical(),
                format!(
                    "eip155:1:{}",
                    s["wallet_address_eip55"].as_str().unwrap().to_lowercase()
                )
            );
        }
    }

    #[test]
    fn identity_key_prefers_the_aud_query_parameter() {
        let s = &test_vectors()["synthetic"];
        let mut p: Payload = serde_json::from_value(s["cacao_no_statement"]["p"].clone()).unwrap();
        p.aud = "https://keys.example.test/?walletconnect_identity_key=did%3Akey%3Az6MkX".into();
        assert_eq!(identity_key(&p).unwrap(), "did:key:z6MkX");
        p.aud = "https://keys.example.test".into();
        assert_eq!(identity_key(&p).unwrap(), "https://keys.example.test");
        p.resources = None;
        assert!(identity_key(&p).is_err());
    }
}
