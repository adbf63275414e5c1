//! HTTP body and query parsing (JSON or form) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (form, body) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, rest),
        None => return,
    };
    let content_type = Some(if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    });
    let _ = keystrate::http::parse_form_or_json::<serde_json::Value>(content_type, body);
    let _ = keystrate::http::parse_form_or_json::<std::collections::HashMap<String, String>>(
        content_type,
        body,
    );
    if let Ok(query) = std::str::from_utf8(body) {
        let _ = serde_urlencoded::from_str::<Vec<(String, String)>>(query);
    }
});
