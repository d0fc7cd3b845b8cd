//! Scripts the worker runs on the local Redis: key state and snapshot,
//! journaling a key in full (keyspace events, reconcile), and the
//! notification leader's lease.
//!
//! Cluster note: every script touches one user's keys, the sponsors set, its
//! meta and the journal. Under Redis Cluster the sync-owned keys would need
//! hash tags and one journal per slot group; the public key names stay.

use redis::{Script, Value};

use crate::error::SyncError;
use crate::journal::PRELUDE;
use crate::keys::{SponsorKey, JOURNAL};
use crate::Inner;

/// KEYS: key, meta(key), sponsors, meta(sponsors)
/// ARGV: uid ('' for the sponsors set), want ('1': with a snapshot)
/// Returns {-2} sponsors set unhydrated, {-3} owner not a sponsor, {-1} key
/// unhydrated, else {0, v} or {0, v, type, {items}}.
pub(crate) const STATE: &str = r#"
if ARGV[1] ~= '' then
  if needs_fetch(KEYS[4], KEYS[3]) then return {-2} end
  if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return {-3} end
end
if needs_fetch(KEYS[2], KEYS[1]) then return {-1} end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if ARGV[2] ~= '1' then return {0, v} end
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'set' then return {0, v, t, redis.call('SMEMBERS', KEYS[1])} end
if t == 'hash' then return {0, v, t, redis.call('HGETALL', KEYS[1])} end
return {0, v, t, {}}
"#;

/// Journals the whole key (a change by another program, or a repair).
/// KEYS: key, meta(key), sponsors, meta(sponsors), journal
/// ARGV: uid ('' for the sponsors set), count of events seen (0: always), min version
/// Returns -2 / -3 as STATE, 0 when the events were our own scripts', else the new version.
pub(crate) const NOTE: &str = r#"
if ARGV[1] ~= '' then
  if needs_fetch(KEYS[4], KEYS[3]) then return -2 end
  if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return -3 end
end
local count = tonumber(ARGV[2])
if count > 0 then
  local e = tonumber(redis.call('HGET', KEYS[2], 'e') or '0')
  if e >= count then
    redis.call('HINCRBY', KEYS[2], 'e', -count)
    return 0
  end
  redis.call('HDEL', KEYS[2], 'e')
end
local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
if v < tonumber(ARGV[3]) then
  v = tonumber(ARGV[3])
  redis.call('HSET', KEYS[2], 'v', v)
end
redis.call('HSET', KEYS[2], 'p', redis.call('EXISTS', KEYS[1]))
redis.call('XADD', KEYS[5], '*', 'k', KEYS[1], 'v', v, 'op', 'full')
return v
"#;

/// KEYS: lease   ARGV: holder, ttl ms. Returns 2 newly acquired, 1 renewed, 0 held by another.
pub(crate) const LEASE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"#;

/// KEYS: lease   ARGV: holder
pub(crate) const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

pub(crate) fn local_script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// The type and content of a key, as copied between the two Redis servers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Content {
    /// `set`, `hash`, `none`, or another Redis type (not copied).
    pub kind: String,
    /// Set members, or hash fields and values interleaved.
    pub items: Vec<Vec<u8>>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LocalState {
    SponsorsUnhydrated,
    NotSponsor,
    Unhydrated,
    Ready { v: u64, content: Option<Content> },
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Noted {
    SponsorsUnhydrated,
    NotSponsor,
    OwnEvents,
    Journaled(u64),
}

/// `''` for the sponsors set, else the owner's id.
pub(crate) fn owner_arg(key: &SponsorKey) -> String {
    key.user_id().map(|id| id.to_string()).unwrap_or_default()
}

pub(crate) fn int(v: &Value, place: &'static str) -> Result<i64, SyncError> {
    redis::from_redis_value_ref::<i64>(v).map_err(|e| SyncError::protocol(place, e.to_string()))
}

pub(crate) fn bytes_list(v: Value, place: &'static str) -> Result<Vec<Vec<u8>>, SyncError> {
    redis::from_redis_value::<Vec<Vec<u8>>>(v)
        .map_err(|e| SyncError::protocol(place, e.to_string()))
}

impl Inner {
    /// Hydration, sponsorship and version of a key (and its content when `want`).
    pub(crate) async fn local_state(
        &self,
        key: &SponsorKey,
        want: bool,
    ) -> Result<LocalState, SyncError> {
        let name = self.keys.name(key);
        let sponsors = self.keys.sponsors();
        let mut inv = self.scripts.state.prepare_invoke();
        inv.key(&name)
            .key(self.keys.meta(&name))
            .key(sponsors)
            .key(self.keys.meta(sponsors))
            .arg(owner_arg(key))
            .arg(if want { "1" } else { "0" });
        let reply: Vec<Value> = self.local.invoke(&inv).await.map_err(SyncError::Local)?;
        let mut it = reply.into_iter();
        let code = int(&it.next().unwrap_or(Value::Nil), "state")?;
        Ok(match code {
            -2 => LocalState::SponsorsUnhydrated,
            -3 => LocalState::NotSponsor,
            -1 => LocalState::Unhydrated,
            _ => {
                let v = int(&it.next().unwrap_or(Value::Nil), "state")?.max(0) as u64;
                let content = match (it.next(), it.next()) {
                    (Some(kind), Some(items)) => Some(Content {
                        kind: redis::from_redis_value::<String>(kind)
                            .map_err(|e| SyncError::protocol("state", e.to_string()))?,
                        items: bytes_list(items, "state")?,
                    }),
                    _ => None,
                };
                LocalState::Ready { v, content }
            }
        })
    }

    /// Journals `key` in full unless `count` events are matched by our own
    /// scripts' count (`count = 0`: always). The new version is at least `min_v`.
    pub(crate) async fn note(
        &self,
        key: &SponsorKey,
        count: u64,
        min_v: u64,
    ) -> Result<Noted, SyncError> {
        let name = self.keys.name(key);
        let sponsors = self.keys.sponsors();
        let mut inv = self.scripts.note.prepare_invoke();
        inv.key(&name)
            .key(self.keys.meta(&name))
            .key(sponsors)
            .key(self.keys.meta(sponsors))
            .key(JOURNAL)
            .arg(owner_arg(key))
            .arg(count)
            .arg(min_v);
        let code: i64 = self.local.invoke(&inv).await.map_err(SyncError::Local)?;
        Ok(match code {
            -2 => Noted::SponsorsUnhydrated,
            -3 => Noted::NotSponsor,
            0 => Noted::OwnEvents,
            v => Noted::Journaled(v.max(0) as u64),
        })
    }
}
