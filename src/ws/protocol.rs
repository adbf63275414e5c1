//! Frames of the WebSocket RPC (docs/protocol.md, "Frames"), Webstrates-compatible.

use super::actions::Action;
use crate::engine::Error;
use serde::Deserialize;
use serde_json::{json, Value};

/// A parsed request frame.
#[derive(Debug)]
pub struct Request {
    /// What `wa` names, with its options.
    pub action: Action,
    /// Echoed as given: a string of 1–64 characters or an integer.
    pub token: Value,
    /// Target document; `None` means the socket's own.
    pub d: Option<String>,
}

/// Why a frame could not be read as a request. `token` is set when the
/// frame had a usable one, so the error can still be a reply.
#[derive(Debug)]
pub struct BadFrame {
    pub token: Option<Value>,
    pub message: String,
}

fn bad(token: Option<Value>, message: impl Into<String>) -> BadFrame {
    BadFrame {
        token,
        message: message.into(),
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Request, BadFrame> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(None, format!("frame is not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(bad(None, "frame must be a JSON object"));
    };
    let token = match map.remove("token") {
        Some(token) => valid_token(token)
            .ok_or_else(|| bad(None, "token must be a string of 1 to 64 characters"))?,
        None => return Err(bad(None, "frame must have \"wa\" and \"token\"")),
    };
    if !map.get("wa").is_some_and(Value::is_string) {
        return Err(bad(Some(token), "frame must have \"wa\" and \"token\""));
    }
    let d = match map.remove("d") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad(Some(token), "d must be a document id")),
    };
    // `wa` and `options` are left: the action's variant and its options.
    match Action::deserialize(Value::Object(map)) {
        Ok(action) => Ok(Request { action, token, d }),
        Err(e) => Err(bad(Some(token), e.to_string())),
    }
}

/// A token as the client gave it, if it is a usable one.
fn valid_token(token: Value) -> Option<Value> {
    match token {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 64 => Some(Value::String(s)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        _ => None,
    }
}

/// Only the token of a frame, read without building the rest: a frame
/// refused by the rate limit is answered with it (so the client can match
/// the refusal) but is not otherwise parsed.
pub fn token_of(text: &str) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct TokenOnly {
        token: Option<Value>,
    }
    let frame: TokenOnly = serde_json::from_str(text).ok()?;
    valid_token(frame.token?)
}

/// A reply frame around `reply`, a value already serialised as JSON.
pub fn reply(token: &Value, reply: &str) -> String {
    format!(r#"{{"wa":"reply","token":{token},"reply":{reply}}}"#)
}

/// An error reply; the cause of an internal failure is logged here.
pub fn reply_error(token: &Value, error: &Error) -> String {
    error.log_internal();
    json!({"wa": "reply", "token": token, "error": error.to_string(), "code": error.code()})
        .to_string()
}

/// The answer to a frame that is not a request at all (or that was
/// refused before it was read).
pub fn frame_error(error: &Error) -> String {
    json!({"wa": "error", "error": error.to_string(), "code": error.code()}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_request() {
        let r = parse(r#"{"wa":"createInvite","token":"k3","d":"doc","options":{"maxAge":3}}"#)
            .unwrap();
        assert_eq!(r.token, json!("k3"));
        assert_eq!(r.d.as_deref(), Some("doc"));
        let Action::CreateInvite { options } = r.action else {
            panic!("not a createInvite: {:?}", r.action);
        };
        assert_eq!(options.get().unwrap().max_age, 3);
    }

    #[test]
    fn reply_frames_carry_the_serialised_value() {
        let frame = reply(&json!("t\"1"), r#"{"uses":0}"#);
        let v: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            v,
            json!({"wa": "reply", "token": "t\"1", "reply": {"uses": 0}})
        );
        let v: Value = serde_json::from_str(&reply(&json!(7), "\"rw\"")).unwrap();
        assert_eq!(v, json!({"wa": "reply", "token": 7, "reply": "rw"}));
    }

    #[test]
    fn token_of_reads_only_usable_tokens() {
        assert_eq!(
            token_of(r#"{"wa":"x","token":"k","big":[1,2]}"#),
            Some(json!("k"))
        );
        assert_eq!(token_of(r#"{"token":7}"#), Some(json!(7)));
        for frame in [
            "nope",
            "[]",
            r#"{"wa":"x"}"#,
            r#"{"token":""}"#,
            r#"{"token":1.5}"#,
        ] {
            assert_eq!(token_of(frame), None, "{frame}");
        }
    }

    #[test]
    fn integer_tokens_are_echoed() {
        assert_eq!(parse(r#"{"wa":"x","token":7}"#).unwrap().token, json!(7));
    }

    #[test]
    fn rejects_bad_frames() {
        for (frame, has_token) in [
            ("nope", false),
            ("[]", false),
            (r#"{"wa":"x"}"#, false),
            (r#"{"token":"t"}"#, true),
            (r#"{"wa":"x","token":""}"#, false),
            (r#"{"wa":"x","token":1.5}"#, false),
            (
                &format!(r#"{{"wa":"x","token":"{}"}}"#, "t".repeat(65)),
                false,
            ),
            (r#"{"wa":"x","token":"t","d":5}"#, true),
        ] {
            let err = parse(frame).unwrap_err();
            assert_eq!(err.token.is_some(), has_token, "{frame}");
        }
    }
}
