//! `POST /exclude`'s body parser (JSON and form) followed by node-id
//! validation: never panics, and every refusal is a 4xx of the closed list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sponsorgate::node_id::NodeId;
use sponsorgate::routes::exclusions::parse_exclude_body;

const MEDIA_TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/merge-patch+json",
    "text/plain",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
    let browser = selector & 0x80 != 0;
    match parse_exclude_body(media_type, browser, body) {
        Ok(parsed) => {
            if let Err(e) = NodeId::parse(parsed.id) {
                let _ = e.to_string();
            }
        }
        Err(e) => assert!(e.status().is_client_error(), "{:?}", e.code()),
    }
});
