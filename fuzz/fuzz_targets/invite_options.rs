//! `createInvite` options: never panic; accepted options are within the
//! bounds of docs/protocol.md, "Invites".
#![no_main]
use keystrate::engine::options::{read_options, CreateOptions};
use keystrate::engine::Level;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(o) = read_options::<CreateOptions>(value) {
        assert!((1..=2_592_000).contains(&o.max_age));
        assert!(o.max_uses.is_none_or(|m| (1..=1_000_000).contains(&m)));
        assert!(o.permissions != Level::None);
    }
});
