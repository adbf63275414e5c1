//! did-JWT verification for the `idAuth` of `POST/DELETE /invite` and
//! `DELETE /identity`: a compact EdDSA JWT signed by an identity key, naming
//! the wallet account (`pkh`) it acts for. The Keys Server checks only the
//! signature; we also check audience, lifetime and action so a token cannot
//! be replayed against another server, later, or on another route.

use super::did::{self, Account};
use super::error::DirError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

/// Allowed clock difference between client and server.
const SKEW_MS: i64 = 5 * 60 * 1000;
/// Longest accepted `exp - iat`.
const MAX_LIFETIME_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// `iat`/`exp` above this are milliseconds (10^11 s is the year 5138).
const MILLISECONDS_ABOVE: i64 = 100_000_000_000;

/// What the token authorises; must match the route it is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RegisterInvite,
    UnregisterInvite,
    UnregisterIdentity,
}

impl Action {
    fn claim(self) -> &'static str {
        match self {
            Action::RegisterInvite => "register_invite",
            Action::UnregisterInvite => "unregister_invite",
            Action::UnregisterIdentity => "unregister_identity",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    aud: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    act: Option<String>,
    pkh: Option<String>,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signing identity key as `did:key:z6Mk…`.
    pub identity_key: String,
    pub account: Account,
    /// For [`Action::RegisterInvite`]: the X25519 invite key (`did:key:z6LS…`).
    pub invite_key: Option<String>,
}

/// Verifies `token` for `action` on a server reached at `audience`.
pub fn verify(
    token: &str,
    action: Action,
    audience: &str,
    now_ms: i64,
) -> Result<Verified, DirError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts[..] else {
        return Err(DirError::jwt("Expected three dot-separated parts"));
    };
    let header: Header = decode_part(header_b64)?;
    if header.alg != "EdDSA" || header.typ.as_deref() != Some("JWT") {
        return Err(DirError::jwt("Header must be alg EdDSA, typ JWT"));
    }
    let claims: Claims = decode_part(claims_b64)?;
    let issuer = VerifyingKey::from_bytes(&did::ed25519_key(&claims.iss)?)
        .map_err(|_| DirError::did("iss is not a valid Ed25519 key"))?;
    let signature = Signature::from_slice(&base64url(signature_b64)?)
        .map_err(|_| DirError::jwt("Signature must be 64 bytes"))?;
    let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
    issuer
        .verify_strict(signed.as_bytes(), &signature)
        .map_err(|_| DirError::jwt("Invalid signature"))?;
    check_audience(&claims, audience)?;
    check_lifetime(&claims, now_ms)?;
    if claims.act.as_deref() != Some(action.claim()) {
        return Err(DirError::jwt(format!("act must be {}", action.claim())));
    }
    let account = Account::from_pkh(claims.pkh.as_deref().unwrap_or_default())?;
    let invite_key = match action {
        Action::RegisterInvite => Some(invite_key(claims.sub.as_deref())?),
        _ => None,
    };
    Ok(Verified {
        identity_key: claims.iss,
        account,
        invite_key,
    })
}

fn base64url(part: &str) -> Result<Vec<u8>, DirError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DirError::jwt("Parts must be base64url without padding"))
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, DirError> {
    serde_json::from_slice(&base64url(part)?)
        .map_err(|e| DirError::jwt(format!("Malformed JSON part: {e}")))
}

fn check_audience(claims: &Claims, audience: &str) -> Result<(), DirError> {
    let aud = claims.aud.as_deref().unwrap_or_default();
    if aud.trim_end_matches('/') != audience.trim_end_matches('/') {
        return Err(DirError::jwt(format!("aud must be {audience}")));
    }
    Ok(())
}

fn check_lifetime(claims: &Claims, now_ms: i64) -> Result<(), DirError> {
    let (Some(iat), Some(exp)) = (claims.iat, claims.exp) else {
        return Err(DirError::jwt("iat and exp are required"));
    };
    let (iat, exp) = (as_ms(iat), as_ms(exp));
    if iat > now_ms + SKEW_MS {
        return Err(DirError::jwt("Issued in the future"));
    }
    if exp <= now_ms - SKEW_MS {
        return Err(DirError::jwt("Expired"));
    }
    // Checked: `iat = i64::MIN, exp = i64::MAX` would otherwise wrap to a
    // negative lifetime and pass (or panic in a debug build).
    if exp
        .checked_sub(iat)
        .is_none_or(|lifetime| lifetime > MAX_LIFETIME_MS)
    {
        return Err(DirError::jwt("Lifetime longer than 30 days"));
    }
    Ok(())
}

/// Seconds, or milliseconds for values too large to be seconds.
fn as_ms(value: i64) -> i64 {
    if value > MILLISECONDS_ABOVE {
        value
    } else {
        value.saturating_mul(1000)
    }
}

fn invite_key(sub: Option<&str>) -> Result<String, DirError> {
    let sub = sub.ok_or_else(|| DirError::did("sub must be the invite did:key"))?;
    let key = did::x25519_key(sub)?;
    Ok(did::encode_key(did::X25519, &key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::test_vectors;

    /// The signature known-answers: valid ones fail later (on aud), the
    /// invalid one fails on its signature.
    #[test]
    fn vector_signatures_are_checked() {
        let now = crate::engine::now_ms();
        for v in test_vectors()["did_jwt"].as_array().unwrap() {
            let token = v["jwt"].as_str().unwrap();
            let err = verify(
                token,
                Action::UnregisterIdentity,
                "http://keystrate.test",
                now,
            )
            .unwrap_err();
            let bad_signature = err.message == "Invalid signature";
            assert_eq!(
                bad_signature,
                v["signature_valid"] == false,
                "{}: {err}",
                v["name"]
            );
        }
    }

    #[test]
    fn synthetic_tokens_verify_at_their_own_time() {
        let s = &test_vectors()["synthetic"];
        let at = 1_700_000_100_000;
        let aud = "https://keys.example.test/";
        let v = verify(
            s["register_invite_jwt"].as_str().unwrap(),
            Action::RegisterInvite,
            aud,
            at,
        )
        .unwrap();
        assert_eq!(v.identity_key, s["identity_did_key"]);
        assert_eq!(
            v.invite_key.as_ref().unwrap(),
            s["invite_did_key"].as_str().unwrap()
        );
        verify(
            s["unregister_invite_jwt"].as_str().unwrap(),
            Action::UnregisterInvite,
            aud,
            at,
        )
        .unwrap();
        verify(
            s["unregister_identity_jwt"].as_str().unwrap(),
            Action::UnregisterIdentity,
            aud,
            at,
        )
        .unwrap();
        let wrong_route = verify(
            s["unregister_invite_jwt"].as_str().unwrap(),
            Action::RegisterInvite,
            aud,
            at,
        );
        assert_eq!(wrong_route.unwrap_err().name, "jwt_verification");
        let later = verify(
            s["unregister_invite_jwt"].as_str().unwrap(),
            Action::UnregisterInvite,
            aud,
            crate::engine::now_ms(),
        );
        assert_eq!(later.unwrap_err().message, "Expired");
    }

    #[test]
    fn the_widest_lifetime_does_not_overflow() {
        let claims = |iat, exp| Claims {
            iss: String::new(),
            sub: None,
            aud: None,
            iat: Some(iat),
            exp: Some(exp),
            act: None,
            pkh: None,
        };
        let now = crate::engine::now_ms();
        let err = check_lifetime(&claims(i64::MIN, i64::MAX), now).unwrap_err();
        assert_eq!(err.name, "jwt_verification");
        assert!(check_lifetime(&claims(now / 1000, now / 1000 + 60), now).is_ok());
    }

    #[test]
    fn millisecond_timestamps_are_recognised() {
        assert_eq!(as_ms(1_700_000_000), 1_700_000_000_000);
        assert_eq!(as_ms(1_700_000_000_000), 1_700_000_000_000);
    }
}
