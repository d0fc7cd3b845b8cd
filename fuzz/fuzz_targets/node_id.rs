//! Node-id validation: accepted exactly when the rules hold, kept byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sponsorgate::node_id::{NodeId, MAX_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let valid = !text.is_empty() && text.len() <= MAX_LEN && !text.chars().any(char::is_control);
    match NodeId::parse(text) {
        Ok(id) => {
            assert!(valid, "{text:?} accepted");
            assert_eq!(id.as_str(), text);
        }
        Err(_) => assert!(!valid, "{text:?} refused"),
    }
});
