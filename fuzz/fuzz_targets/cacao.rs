//! CACAO parsing, SIWE rebuilding and signature recovery never panic.
#![no_main]
use keystrate::directory::cacao::{self, Cacao};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = serde_json::from_slice::<Cacao>(data) {
        let _ = cacao::verify(&c, 1_700_000_000_000);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (message, signature) = text.split_once('|').unwrap_or((text, "0x00"));
        let _ = cacao::recover_signer(message, signature);
    }
});
