//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        let secret = b"It's a Secret to Everybody";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), expected);
        let check = |h: &str| verify_signature(secret, b"Hello, World!", Some(h.as_bytes()));
        assert_eq!(check(expected), SignatureCheck::Valid);
        assert_eq!(
            check(&expected.replace("e17", "e18")),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(&expected[..expected.len() - 2]),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),
            SignatureCheck::Invalid
        );
        assert_eq!(
            check(expected.trim_start_matches("sha256=")),
            SignatureCheck::Invalid
        );
        assert_eq!(check("sha256=zz"), SignatureCheck::Invalid);
        assert_eq!(
            verify_signature(secret, b"Hello, World!", None),
            SignatureCheck::Missing
        );
        assert_eq!(
            verify_signature(secret, b"Hello, World?", Some(expected.as_bytes())),
            SignatureCheck::Invalid
        );
    }
}
