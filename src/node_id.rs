//! Node ids: what `POST /exclude` and `DELETE /exclusions/{id}` accept. The
//! rule lives in the type, so a `NodeId` that exists is a valid one.

use std::fmt;

/// Longest node id, in bytes.
pub const MAX_LEN: usize = 256;

/// 1 to [`MAX_LEN`] bytes of UTF-8 without control characters (C0, DEL, C1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

/// Why a string is not a node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNodeId {
    #[error("id must not be empty")]
    Empty,
    #[error("id must be at most 256 bytes")]
    TooLong,
    #[error("id must not contain control characters")]
    ControlCharacter,
    #[error("id must be a string")]
    NotAString,
}

impl NodeId {
    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidNodeId> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidNodeId::Empty);
        }
        if id.len() > MAX_LEN {
            return Err(InvalidNodeId::TooLong);
        }
        if id.chars().any(char::is_control) {
            return Err(InvalidNodeId::ControlCharacter);
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn node_id_rules() {
        assert!(NodeId::parse("MDQ6VXNlcjE=").is_ok());
        assert!(NodeId::parse("ü…é").is_ok());
        assert!(NodeId::parse("x".repeat(256)).is_ok());
        for bad in ["", "a\nb", "a\u{0}", "tab\there", "c1\u{85}", "del\u{7f}"] {
            assert!(NodeId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(NodeId::parse("x".repeat(257)), Err(InvalidNodeId::TooLong));
        assert_eq!(
            NodeId::parse("é".repeat(129)),
            Err(InvalidNodeId::TooLong),
            "258 bytes"
        );
    }

    proptest! {
        /// Accepted exactly when the three rules hold, and kept byte for byte.
        #[test]
        fn accepted_exactly_when_the_rules_hold(id in any::<String>()) {
            let valid = !id.is_empty() && id.len() <= MAX_LEN && !id.chars().any(char::is_control);
            match NodeId::parse(id.clone()) {
                Ok(node) => {
                    prop_assert!(valid);
                    prop_assert_eq!(node.as_str(), id.as_str());
                }
                Err(_) => prop_assert!(!valid),
            }
        }

        /// Printable text of allowed length is always accepted.
        #[test]
        fn printable_ids_pass(id in "[[:print:]&&[^\\x7f]]{1,64}") {
            prop_assert!(NodeId::parse(id).is_ok());
        }
    }
}
