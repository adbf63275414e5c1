//! HS256 JSON Web Tokens for API keys (Smooch-style app and account JWTs).
//!
//! Only what the key REST needs, written out so that every rejection rule is
//! visible: the header must say `alg: HS256` (so `none` and asymmetric
//! algorithms are refused before any signature work), the signature must be
//! the HMAC of the key named by `kid`, and an `exp` must lie in the future.
//! The caller checks `scope` and that `kid` names a key of the right kind.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. The HTTP layer answers 401 for all of them; the
/// text goes into the error description to help whoever wrote the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("JWT is malformed")]
    Malformed,
    #[error("JWT alg must be HS256")]
    Algorithm,
    #[error("JWT header has no kid")]
    NoKid,
    #[error("JWT signature does not match its kid")]
    Signature,
    #[error("JWT has expired")]
    Expired,
}

/// The parts of a token that were checked before the signature.
pub struct Unverified<'a> {
    pub kid: String,
    signing_input: &'a str,
    signature: Vec<u8>,
    claims: Map<String, Value>,
}

/// Signs `claims` with `secret`, naming `kid` in the header.
pub fn sign(kid: &str, secret: &[u8], claims: &Value) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = mac(secret, input.as_bytes()).finalize().into_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Splits a token and checks its header, so the caller can look up the key
/// named by `kid` before verifying.
pub fn parse(token: &str) -> Result<Unverified<'_>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Map<String, Value> = decode_json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::Algorithm);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::NoKid)?
        .to_string();
    let claims: Map<String, Value> = decode_json(claims)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..token.rfind('.').expect("three parts")];
    Ok(Unverified {
        kid,
        signing_input,
        signature,
        claims,
    })
}

impl Unverified<'_> {
    /// Checks the signature against `secret` (in constant time) and `exp`
    /// against `now_secs`; returns the claims.
    pub fn verify(self, secret: &[u8], now_secs: i64) -> Result<Map<String, Value>, JwtError> {
        mac(secret, self.signing_input.as_bytes())
            .verify_slice(&self.signature)
            .map_err(|_| JwtError::Signature)?;
        match self.claims.get("exp") {
            None => {}
            Some(exp) => {
                let exp = exp.as_f64().ok_or(JwtError::Malformed)?;
                if exp <= now_secs as f64 {
                    return Err(JwtError::Expired);
                }
            }
        }
        Ok(self.claims)
    }
}

fn mac(secret: &[u8], input: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(input);
    m
}

fn decode_json(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forge(header: Value, claims: Value, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = mac(secret, input.as_bytes()).finalize().into_bytes();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn round_trip() {
        let t = sign("app_1", b"s3cret", &json!({"scope": "app"}));
        let u = parse(&t).unwrap();
        assert_eq!(u.kid, "app_1");
        assert_eq!(u.verify(b"s3cret", 0).unwrap()["scope"], "app");
    }

    #[test]
    fn rejections() {
        let t = sign("app_1", b"s3cret", &json!({"scope": "app"}));
        assert_eq!(
            parse(&t).unwrap().verify(b"other", 0).err(),
            Some(JwtError::Signature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "app_1"}).to_string()),
            URL_SAFE_NO_PAD.encode(json!({"scope": "app"}).to_string())
        );
        assert_eq!(parse(&none).err(), Some(JwtError::Algorithm));
        let hs512 = forge(json!({"alg": "HS512", "kid": "k"}), json!({}), b"s");
        assert_eq!(parse(&hs512).err(), Some(JwtError::Algorithm));
        let no_kid = forge(json!({"alg": "HS256"}), json!({}), b"s");
        assert_eq!(parse(&no_kid).err(), Some(JwtError::NoKid));
        let expired = forge(
            json!({"alg": "HS256", "kid": "k"}),
            json!({"exp": 100}),
            b"s",
        );
        assert_eq!(
            parse(&expired).unwrap().verify(b"s", 200).err(),
            Some(JwtError::Expired)
        );
        let live = forge(
            json!({"alg": "HS256", "kid": "k"}),
            json!({"exp": 300}),
            b"s",
        );
        assert!(parse(&live).unwrap().verify(b"s", 200).is_ok());
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
