//! HS256 JSON Web Tokens for API keys (Smooch-style app and account JWTs),
//! made and checked by the `jsonwebtoken` crate. The rules, in the order
//! they are applied: the header must say `alg: HS256` (checked here,
//! before anything else, so `none` and every other algorithm are refused
//! before any signature work), the header must name a `kid`, the
//! signature must be the HMAC of that key's secret (compared in constant
//! time by the crate), and an `exp`, when present, must not have passed
//! (no leeway). The caller checks `scope` and that `kid` names a key of
//! the right kind.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

/// Why a token was refused. The HTTP layer answers 401 for all of them; the
/// text goes into the error description to help whoever wrote the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
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

/// A token whose header passed, so the caller can look up the key named by
/// `kid` before verifying.
pub(crate) struct Unverified<'a> {
    pub(crate) kid: String,
    token: &'a str,
}

/// Signs `claims` with `secret`, naming `kid` in the header.
pub(crate) fn sign(
    kid: &str,
    secret: &[u8],
    claims: &Value,
) -> Result<String, jsonwebtoken::errors::Error> {
    let header = Header {
        kid: Some(kid.to_string()),
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
}

/// Reads a token's header: HS256 and a `kid`, or refused.
pub(crate) fn parse(token: &str) -> Result<Unverified<'_>, JwtError> {
    if token.split('.').count() != 3 {
        return Err(JwtError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        // `none` and names the crate does not know are algorithms too.
        ErrorKind::InvalidAlgorithmName => JwtError::Algorithm,
        _ if names_an_algorithm(token) => JwtError::Algorithm,
        _ => JwtError::Malformed,
    })?;
    if header.alg != Algorithm::HS256 {
        return Err(JwtError::Algorithm);
    }
    let kid = header.kid.ok_or(JwtError::NoKid)?;
    Ok(Unverified { kid, token })
}

/// Whether an unreadable header still parses as JSON with some `alg` (such
/// as `none`, which the crate has no name for): a refused algorithm, not a
/// malformed token.
fn names_an_algorithm(token: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .is_some_and(|header| header.get("alg").is_some_and(Value::is_string))
}

impl Unverified<'_> {
    /// Checks the signature against `secret` and `exp` against the clock;
    /// returns the claims.
    pub(crate) fn verify(self, secret: &[u8]) -> Result<Map<String, Value>, JwtError> {
        let mut rules = Validation::new(Algorithm::HS256);
        // `exp` is optional (Smooch's minted tokens carry none) and exact.
        rules.required_spec_claims.clear();
        rules.leeway = 0;
        // Our tokens name no audience; one that does is not refused for it.
        rules.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            self.token,
            &DecodingKey::from_secret(secret),
            &rules,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => JwtError::Signature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            _ => JwtError::Malformed,
        })?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// A token with any header, signed with `secret` by the crate's own
    /// HMAC (an algorithm it refuses to sign under, such as `none`, is
    /// written with an empty signature).
    fn forge(header: Value, claims: Value, secret: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn round_trip() {
        let t = sign("app_1", b"s3cret", &json!({"scope": "app"})).unwrap();
        let u = parse(&t).unwrap();
        assert_eq!(u.kid, "app_1");
        assert_eq!(u.verify(b"s3cret").unwrap()["scope"], "app");
    }

    #[test]
    fn rejections() {
        let t = sign("app_1", b"s3cret", &json!({"scope": "app"})).unwrap();
        assert_eq!(
            parse(&t).unwrap().verify(b"other").err(),
            Some(JwtError::Signature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "app_1"}).to_string()),
            URL_SAFE_NO_PAD.encode(json!({"scope": "app"}).to_string())
        );
        assert_eq!(parse(&none).err(), Some(JwtError::Algorithm));
        for alg in ["HS512", "HS384", "RS256", "ES256", "EdDSA", "hs256"] {
            let other = forge(json!({"alg": alg, "kid": "k"}), json!({}), b"s");
            assert_eq!(parse(&other).err(), Some(JwtError::Algorithm), "{alg}");
        }
        let no_kid = forge(json!({"alg": "HS256"}), json!({}), b"s");
        assert_eq!(parse(&no_kid).err(), Some(JwtError::NoKid));
        let header = json!({"alg": "HS256", "kid": "k"});
        let expired = forge(header.clone(), json!({"exp": now() - 1}), b"s");
        assert_eq!(
            parse(&expired).unwrap().verify(b"s").err(),
            Some(JwtError::Expired)
        );
        let live = forge(header.clone(), json!({"exp": now() + 300}), b"s");
        assert!(parse(&live).unwrap().verify(b"s").is_ok());
        let no_exp = forge(header, json!({"scope": "app"}), b"s");
        assert!(parse(&no_exp).unwrap().verify(b"s").is_ok());
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(parse(bad).err(), Some(JwtError::Malformed), "{bad:?}");
        }
    }
}
