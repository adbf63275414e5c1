//! did:key and CAIP-10 parsing never panic; decoded keys re-encode to the
//! same identifier.
#![no_main]
use keystrate::directory::did::{self, Account};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for codec in [[0xed, 0x01], [0xec, 0x01]] {
        if let Ok(key) = did::decode_key(text, codec) {
            let again = did::encode_key(codec, &key);
            assert_eq!(did::decode_key(&again, codec).unwrap(), key);
        }
    }
    if let Ok(account) = Account::from_caip10(text) {
        let canonical = account.canonical();
        assert_eq!(Account::from_caip10(&canonical).unwrap().canonical(), canonical);
    }
    let _ = Account::from_pkh(text);
});
