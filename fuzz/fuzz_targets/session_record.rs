//! The session record decoder: whatever sits in a `session:` key (another
//! program's write, a truncated value), decoding never panics, and a decoded
//! record survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sponsorgate::session::decode_record;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = decode_record(data) {
        let again = serde_json::to_vec(&record).expect("a record encodes");
        let decoded = decode_record(&again).expect("an encoded record decodes");
        assert_eq!(decoded.id, record.id);
        assert_eq!(decoded.data, record.data);
    }
});
