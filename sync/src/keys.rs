//! The public key layout of the local Redis (SPEC §4) and the sync worker's own
//! bookkeeping keys. This is the only module that spells key names.

/// Prefix of every key the sync machinery owns (journal, per-key metadata, …).
pub const SYNC_PREFIX: &str = "sync:";
/// Durable record of sponsor-key changes still to reach the remote (a Stream).
pub const JOURNAL: &str = "sync:journal";
/// Consumer group of the journal shared by every worker process.
pub const JOURNAL_GROUP: &str = "mirror";
/// Lease held by the one worker that turns keyspace notifications into journal entries.
pub const NOTIFY_LEADER: &str = "sync:notify-leader";
/// Prefix of the per-key sync metadata hashes (`sync:meta:{key}`), local and remote.
pub const META_PREFIX: &str = "sync:meta:";
/// Prefix of session keys (owned by the app's session store).
pub const SESSION_PREFIX: &str = "session:";

/// Names of the keys of one deployment (one `SPONSORABLE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    sponsors: String,
}

/// A key of the public layout, recognised from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SponsorKey {
    /// `sponsors:{SPONSORABLE}`: the set of sponsors' user ids.
    Sponsors,
    /// `user_details:{id}`: hash of the user's profile and sponsor status.
    UserDetails(u64),
    /// `user:{id}:mnodes`: set of node ids the user excluded.
    Mnodes(u64),
}

impl Keys {
    pub fn new(sponsorable: &str) -> Self {
        Self {
            sponsors: format!("sponsors:{sponsorable}"),
        }
    }

    /// `sponsors:{SPONSORABLE}`
    pub fn sponsors(&self) -> &str {
        &self.sponsors
    }

    /// `user_details:{id}`
    pub fn user_details(&self, user_id: u64) -> String {
        format!("user_details:{user_id}")
    }

    /// `user:{id}:mnodes`
    pub fn mnodes(&self, user_id: u64) -> String {
        format!("user:{user_id}:mnodes")
    }

    /// Per-key sync metadata hash (local and remote): `sync:meta:{key}`.
    pub fn meta(&self, key: &str) -> String {
        format!("{META_PREFIX}{key}")
    }

    /// Members removed from a set before it was fetched back (`sync:tomb:{key}`);
    /// the fetch-back merge leaves them out so that a removal wins.
    pub fn tombstones(&self, key: &str) -> String {
        format!("sync:tomb:{key}")
    }

    /// The name of a recognised key.
    pub fn name(&self, key: &SponsorKey) -> String {
        match key {
            SponsorKey::Sponsors => self.sponsors.clone(),
            SponsorKey::UserDetails(id) => self.user_details(*id),
            SponsorKey::Mnodes(id) => self.mnodes(*id),
        }
    }

    /// Recognise a key of the public layout (for keyspace notifications).
    /// Returns `None` for session, sync and foreign keys.
    pub fn parse(&self, key: &str) -> Option<SponsorKey> {
        if key == self.sponsors {
            return Some(SponsorKey::Sponsors);
        }
        if let Some(id) = key.strip_prefix("user_details:") {
            return parse_id(id).map(SponsorKey::UserDetails);
        }
        let id = key.strip_prefix("user:")?.strip_suffix(":mnodes")?;
        parse_id(id).map(SponsorKey::Mnodes)
    }
}

impl SponsorKey {
    /// The user the key belongs to (`None` for the sponsors set itself).
    pub fn user_id(&self) -> Option<u64> {
        match self {
            SponsorKey::Sponsors => None,
            SponsorKey::UserDetails(id) | SponsorKey::Mnodes(id) => Some(*id),
        }
    }
}

/// Decimal GitHub user id without sign, leading zeros or other noise, so that
/// one user has exactly one key name.
fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_public_layout() {
        let keys = Keys::new("acme-org");
        assert_eq!(keys.sponsors(), "sponsors:acme-org");
        assert_eq!(keys.user_details(42), "user_details:42");
        assert_eq!(keys.mnodes(42), "user:42:mnodes");
        assert_eq!(keys.meta("user:42:mnodes"), "sync:meta:user:42:mnodes");
    }

    #[test]
    fn parse_recognises_only_sponsor_keys() {
        let keys = Keys::new("acme-org");
        assert_eq!(keys.parse("sponsors:acme-org"), Some(SponsorKey::Sponsors));
        assert_eq!(keys.parse("user:7:mnodes"), Some(SponsorKey::Mnodes(7)));
        assert_eq!(
            keys.parse("user_details:7"),
            Some(SponsorKey::UserDetails(7))
        );
        for other in [
            "sponsors:other",
            "user:07:mnodes",
            "user:x:mnodes",
            "user::mnodes",
            "user:7:mnodesx",
            "session:abc",
            "sync:meta:user:7:mnodes",
            "user_details:-1",
        ] {
            assert_eq!(keys.parse(other), None, "{other}");
        }
        for key in [
            SponsorKey::Sponsors,
            SponsorKey::UserDetails(3),
            SponsorKey::Mnodes(3),
        ] {
            assert_eq!(keys.parse(&keys.name(&key)), Some(key));
        }
    }
}
