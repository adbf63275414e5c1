//! The WebSocket request decoder never panics, and what it accepts has a
//! token of the allowed shape.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(request) = keystrate::ws::protocol::parse(text) {
        match &request.token {
            serde_json::Value::String(s) => assert!((1..=64).contains(&s.chars().count())),
            serde_json::Value::Number(n) => assert!(n.is_i64() || n.is_u64()),
            other => panic!("accepted token {other:?}"),
        }
        // Replies built from it are valid JSON.
        let e = keystrate::engine::Error::UnknownAction;
        let frame = keystrate::ws::protocol::reply_error(&request.token, &e);
        serde_json::from_str::<serde_json::Value>(&frame).unwrap();
    }
});
