//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, compared in constant time.

#[allow(unused_imports)]
use super::*;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// `sha256=` + lowercase hex HMAC-SHA256 of `body` under `secret`: the value
/// GitHub sends in `X-Hub-Signature-256`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    Missing,
    Invalid,
}

/// Checks an `X-Hub-Signature-256` value against the raw body, in constant
/// time (the MAC comparison is `subtle`'s). The SHA-1 header is never consulted.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&[u8]>) -> SignatureCheck {
    let Some(value) = header else {
        return SignatureCheck::Missing;
    };
    let Some(hex_mac) = value.strip_prefix(b"sha256=") else {
        return SignatureCheck::Invalid;
    };
    let Ok(claimed) = hex::decode(hex_mac) else {
        return SignatureCheck::Invalid;
    };
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret) else {
        return SignatureCheck::Invalid;
    };
    mac.update(body);
    match mac.verify_slice(&claimed) {
        Ok(()) => SignatureCheck::Valid,
        Err(_) => SignatureCheck::Invalid,
    }
}
