//! did-JWT verification never panics on any token, for every route.
#![no_main]
use keystrate::directory::jwt::{self, Action};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    for action in [Action::RegisterInvite, Action::UnregisterInvite, Action::UnregisterIdentity] {
        // Random bytes never carry a valid Ed25519 signature.
        assert!(jwt::verify(token, action, "https://keys.example", 1_700_000_000_000).is_err());
    }
});
