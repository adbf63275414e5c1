//! Permission parsing: never panics; accepted input round-trips through the
//! canonical form, and merge never lowers.
#![no_main]
use keystrate::engine::Level;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(level) = Level::parse(text) {
        assert!(text.chars().all(|c| "arw".contains(c)) && text.len() <= 3);
        assert_eq!(Level::parse(level.as_str()), Ok(level));
        for other in Level::ALL {
            assert!(level.merge(other) >= level);
        }
    }
});
