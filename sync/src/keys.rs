//! The public key layout of the local Redis (docs/contract.md, Redis keys) and the sync worker's own
//! bookkeeping keys. This is the only module that spells key names.

/// Prefix of every key the sync machinery owns (journal, per-key metadata, …).
pub const SYNC_PREFIX: &str = "sync:";
/// Lease held by the one worker that turns keyspace notifications into
/// pending changes and runs the periodic reconciliation.
pub const NOTIFY_LEADER: &str = "sync:notify-leader";
/// Prefix of the per-key sync metadata hashes (`sync:m:{key}`), local and remote.
pub const META_PREFIX: &str = "sync:m:";
/// Prefix of the per-key pending changes (`sync:p:{key}`, local).
pub const PENDING_PREFIX: &str = "sync:p:";
/// The remote's sentinel: absent after a flush or a restart with an empty dataset.
pub const REMOTE_SENTINEL: &str = "sync:alive";
/// Local record of the remote's identity (`run_id` and sentinel) when last seen whole.
pub const REMOTE_IDENTITY: &str = "sync:remote-identity";
/// Local flag: a remote loss is being repaired (read by every process's `/readyz`).
pub const RESYNCING: &str = "sync:resyncing";

/// Names of the keys of one deployment (one `SPONSORABLE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    sponsors: String,
}

/// A key of the public layout, recognised from its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SponsorKey {
    /// `sponsors:{SPONSORABLE}`: the set of sponsors' user ids.
    Sponsors,
    /// `user_details:{id}`: hash of the user's profile and sponsor status.
    UserDetails(u64),
    /// `user:{id}:mnodes`: set of node ids the user excluded.
    Mnodes(u64),
    /// `auth:tokens:{id}`: set of the user's API token records (the service's
    /// own key, not public; a sponsor's persists like their preferences).
    Tokens(u64),
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

    /// `user:{id}:activity`: the stream of the user's changes made through
    /// the API (public; written in the same step as each change).
    pub fn activity(&self, user_id: u64) -> String {
        format!("user:{user_id}:activity")
    }

    /// `auth:tokens:{id}`
    pub fn tokens(&self, user_id: u64) -> String {
        format!("auth:tokens:{user_id}")
    }

    /// Per-key sync metadata (local and remote): `sync:m:{key}`. The braces
    /// are a hash tag: every `sync:*:{key}` companion lives in the key's own
    /// Redis Cluster slot, so each script touches one slot.
    pub fn meta(&self, key: &str) -> String {
        format!("{META_PREFIX}{{{key}}}")
    }

    /// Changes the remote has not confirmed yet (local hash, member or field → entry).
    pub fn pending(&self, key: &str) -> String {
        format!("{PENDING_PREFIX}{{{key}}}")
    }

    /// Writes made while a fetch-back of the key runs (local list, replayed by its swap).
    pub fn wlist(&self, key: &str) -> String {
        format!("sync:w:{{{key}}}")
    }

    /// The remote copy being staged by one fetch-back (local).
    pub fn staging(&self, key: &str, token: &str) -> String {
        format!("sync:f:{{{key}}}:{token}")
    }

    /// The stamp of each member's or field's last applied change (remote).
    pub fn stamps(&self, key: &str) -> String {
        format!("sync:s:{{{key}}}")
    }

    /// The sponsor key whose pending hash this is (`sync:p:{user:42:mnodes}`).
    pub fn parse_pending(&self, name: &str) -> Option<SponsorKey> {
        let inner = name
            .strip_prefix(PENDING_PREFIX)?
            .strip_prefix('{')?
            .strip_suffix('}')?;
        self.parse(inner)
    }

    /// The name of a recognised key.
    pub fn name(&self, key: &SponsorKey) -> String {
        match key {
            SponsorKey::Sponsors => self.sponsors.clone(),
            SponsorKey::UserDetails(id) => self.user_details(*id),
            SponsorKey::Mnodes(id) => self.mnodes(*id),
            SponsorKey::Tokens(id) => self.tokens(*id),
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
        if let Some(id) = key.strip_prefix("auth:tokens:") {
            return parse_id(id).map(SponsorKey::Tokens);
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
            SponsorKey::UserDetails(id) | SponsorKey::Mnodes(id) | SponsorKey::Tokens(id) => {
                Some(*id)
            }
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
        assert_eq!(keys.meta("user:42:mnodes"), "sync:m:{user:42:mnodes}");
        assert_eq!(keys.pending("user:42:mnodes"), "sync:p:{user:42:mnodes}");
        assert_eq!(
            keys.parse_pending("sync:p:{user:42:mnodes}"),
            Some(SponsorKey::Mnodes(42))
        );
        assert_eq!(keys.parse_pending("sync:p:{session:x}"), None);
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
            "sync:m:{user:7:mnodes}",
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
