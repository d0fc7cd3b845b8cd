//! API tokens: `sg_` + 40 characters of `[A-Za-z0-9]`. The first 11 are the
//! owner's user id in base 62 (so a bearer request finds the owner's records
//! without a global index), the next 23 are random (137 bits), the last 6 a
//! checksum of the rest (so a secret scanner, or our own log review, can
//! tell a real token from a look-alike without asking us). Only a SHA-256
//! digest of a token is stored, in the owner's record set
//! `auth:tokens:{id}` (a sponsor's persists like their preferences).

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Live tokens one user may hold.
pub const MAX_TOKENS: u64 = 20;
pub const PREFIX: &str = "sg_";
const BODY_LEN: usize = 40;
const UID_LEN: usize = 11;
const RANDOM_LEN: usize = 23;
const CHECKSUM_LEN: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a token may do.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
    /// `GET /me`, `GET /exclusions`, `GET /activity`.
    #[serde(rename = "exclusions:read")]
    ExclusionsRead,
    /// `POST /exclude`, `DELETE /exclusions/{id}`.
    #[serde(rename = "exclusions:write")]
    ExclusionsWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExclusionsRead => "exclusions:read",
            Self::ExclusionsWrite => "exclusions:write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exclusions:read" => Some(Self::ExclusionsRead),
            "exclusions:write" => Some(Self::ExclusionsWrite),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored token (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id, for listing and revoking (`tok_` + 12 hex digits).
    pub id: String,
    /// Hex SHA-256 of the token.
    pub digest: String,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub scopes: Vec<Scope>,
    pub name: String,
}

impl TokenRecord {
    /// The set member that stores it: `v1|id|digest|created|expires|scopes|name`
    /// (the name last: it may hold `|`).
    pub fn encode(&self) -> String {
        let scopes: Vec<&str> = self.scopes.iter().map(|s| s.as_str()).collect();
        format!(
            "v1|{}|{}|{}|{}|{}|{}",
            self.id,
            self.digest,
            self.created_at,
            self.expires_at.map(|e| e.to_string()).unwrap_or_default(),
            scopes.join(","),
            self.name
        )
    }

    /// `None` for anything that is not a record of ours.
    pub fn decode(member: &str) -> Option<Self> {
        let mut parts = member.splitn(7, '|');
        if parts.next()? != "v1" {
            return None;
        }
        let id = parts.next()?.to_owned();
        let digest = parts.next()?.to_owned();
        let created_at = parts.next()?.parse().ok()?;
        let expires_at = match parts.next()? {
            "" => None,
            e => Some(e.parse().ok()?),
        };
        let scopes = parts
            .next()?
            .split(',')
            .map(Scope::parse)
            .collect::<Option<Vec<_>>>()?;
        let name = parts.next()?.to_owned();
        Some(Self {
            id,
            digest,
            created_at,
            expires_at,
            scopes,
            name,
        })
    }

    pub fn expired(&self, now_secs: u64) -> bool {
        self.expires_at.is_some_and(|e| e <= now_secs)
    }

    /// Whether `token` is this record's (constant time in the digest).
    pub fn matches(&self, token: &str) -> bool {
        bool::from(digest(token).as_bytes().ct_eq(self.digest.as_bytes()))
    }
}

/// Hex SHA-256 of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn base62(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn from_base62(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |acc, b| {
        let digit = ALPHABET.iter().position(|a| *a == b)? as u64;
        acc.checked_mul(62)?.checked_add(digit)
    })
}

/// Six base-62 characters of SHA-256 over `sg_` and the first 34 characters.
fn checksum(head: &str) -> String {
    let hash = Sha256::digest(format!("{PREFIX}{head}").as_bytes());
    let n = u64::from_be_bytes([
        hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
    ]);
    base62(n, CHECKSUM_LEN)
}

/// A new token for `user_id` (shown once, then only its digest is kept).
pub fn generate(user_id: u64) -> String {
    let mut rng = rand::thread_rng();
    let random: String = (0..RANDOM_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..62)]))
        .collect();
    let head = format!("{}{random}", base62(user_id, UID_LEN));
    format!("{PREFIX}{head}{}", checksum(&head))
}

/// A new public token id.
pub fn new_id() -> String {
    format!("tok_{}", hex::encode(rand::random::<[u8; 6]>()))
}

/// The owner of a well-formed token with a right checksum; `None` otherwise.
pub fn owner_of(token: &str) -> Option<u64> {
    let body = token.strip_prefix(PREFIX)?;
    if body.len() != BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (head, sum) = body.split_at(BODY_LEN - CHECKSUM_LEN);
    if checksum(head) != sum {
        return None;
    }
    from_base62(&head[..UID_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_has_the_documented_shape_and_names_its_owner() {
        let token = generate(1001);
        assert_eq!(token.len(), 43);
        assert!(token.starts_with("sg_"));
        assert!(token[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(owner_of(&token), Some(1001));
        assert_ne!(generate(1001), token, "random part");
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let token = generate(42);
        let mut bytes = token.into_bytes();
        bytes[20] = if bytes[20] == b'a' { b'b' } else { b'a' };
        assert_eq!(owner_of(&String::from_utf8(bytes).unwrap()), None);
        assert_eq!(owner_of("sg_short"), None);
        assert_eq!(
            owner_of("ghp_0000000000000000000000000000000000000000"),
            None
        );
    }

    #[test]
    fn records_round_trip_and_strangers_are_refused() {
        let record = TokenRecord {
            id: new_id(),
            digest: digest("sg_x"),
            created_at: 1_700_000_000,
            expires_at: Some(1_800_000_000),
            scopes: vec![Scope::ExclusionsRead, Scope::ExclusionsWrite],
            name: "my | script".to_owned(),
        };
        assert_eq!(TokenRecord::decode(&record.encode()), Some(record.clone()));
        assert!(record.matches("sg_x") && !record.matches("sg_y"));
        assert!(record.expired(1_800_000_000) && !record.expired(1_799_999_999));
        for stranger in ["", "v2|a", "v1|a|b|c|d|e|f", "node-id"] {
            assert_eq!(TokenRecord::decode(stranger), None, "{stranger}");
        }
    }

    proptest! {
        #[test]
        fn every_user_id_round_trips(uid in any::<u64>()) {
            prop_assert_eq!(owner_of(&generate(uid)), Some(uid));
        }

        #[test]
        fn random_strings_are_not_tokens(s in "sg_[A-Za-z0-9]{40}") {
            // A random body passes the checksum about once in 62^6.
            prop_assert!(owner_of(&s).is_none() || checksum(&s[3..37]) == s[37..]);
        }
    }
}
