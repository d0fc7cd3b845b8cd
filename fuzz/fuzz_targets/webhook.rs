//! The webhook path before any Redis: the signature check (with a fuzzed
//! header, and with the right signature), the payload extraction (JSON or
//! form) and the event parser and decision. Never panics; a body signed
//! with the secret always verifies, a changed one never does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sponsorgate::routes::webhooks::payload;
use sponsorgate::sponsorship::{decide, parse_event, sign, verify_signature, Parsed, SignatureCheck};

const SECRET: &[u8] = b"fuzzing secret";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(selector).min(rest.len());
    let (header, body) = rest.split_at(split);
    let _ = verify_signature(SECRET, body, Some(header));
    let signature = sign(SECRET, body);
    assert_eq!(
        verify_signature(SECRET, body, Some(signature.as_bytes())),
        SignatureCheck::Valid
    );
    let mut changed = body.to_vec();
    changed.push(b' ');
    assert_eq!(
        verify_signature(SECRET, &changed, Some(signature.as_bytes())),
        SignatureCheck::Invalid
    );
    let media_type = if selector & 1 == 0 {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let Ok(json) = payload(media_type, body) else {
        return;
    };
    if let Ok(Parsed::Event(event)) = parse_event(&json, "acme-org") {
        for minimum in [0, 5] {
            let _ = decide(&event, minimum);
        }
    }
});
