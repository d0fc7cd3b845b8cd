//! The write path: how the API changes sponsor keys in the local Redis.
//!
//! Every change is one Lua script, so the change, its journal entry and the
//! per-key metadata move together (one round trip, atomic). The journal is the
//! Stream [`keys::JOURNAL`]; each entry names a key and what happened to it:
//!
//! | field | meaning |
//! |---|---|
//! | `k`  | the key name (`user:42:mnodes`, `user_details:42`, `sponsors:acme`) |
//! | `v`  | the key's version after the change (`sync:meta:{key}` field `v`) |
//! | `op` | `sadd` / `srem` (one member, field `m`), or `full` (copy the whole key) |
//! | `m`  | the member, for `sadd`/`srem` |
//!
//! Per-key metadata `sync:meta:{key}` (a hash, local Redis):
//!
//! | field | meaning |
//! |---|---|
//! | `v` | version, +1 per journaled change; the remote keeps the version it applied |
//! | `h` | `1` once the key reflects the remote (fetched back or known absent there); missing after a flush, so the key must be fetched back before its first use |
//! | `p` | `1` if the key should exist locally: `h=1, p=1` and no key means it was evicted |
//! | `e` | keyspace events our own scripts caused and the notification leader has not matched yet |
//!
//! Scripts answer `-2` when the sponsors set itself must be fetched back first,
//! `-1` when the user's key must be, so the caller can fetch back (bounded by
//! `REMOTE_TIMEOUT_MS`) and retry, or retry with `force` when the remote is
//! unreachable: the write then goes ahead, removals leave a tombstone
//! (`sync:tomb:{key}`) so the later merge cannot bring them back, and a `full`
//! entry makes the worker fetch back and merge as soon as the remote answers.
//! While the sponsors set itself awaits its fetch-back (`-2`), a forced write
//! cannot know whether the user is a sponsor: it treats them as a possible
//! one (removals tombstoned, the key journaled in full), and the worker
//! mirrors the key only if they turn out to be.
//!
//! Each script adds to `e` the keyspace events it causes on the key whose
//! entry it writes, so the notification leader can tell them from changes
//! made by other programs.

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script, Value};

use crate::keys::{Keys, SponsorKey};

/// Lua shared by the scripts: does `key` have to be fetched back before use?
pub(crate) const PRELUDE: &str = r#"
local function needs_fetch(meta, key)
  local h, p = unpack(redis.call('HMGET', meta, 'h', 'p'))
  if h ~= '1' then return true end
  return p == '1' and redis.call('EXISTS', key) == 0
end
local function journal(journal_key, meta, key, op, member, events)
  -- One HSET for v, p and e: fewer calls, and one keyspace event on the meta
  -- key instead of three for the notification subscriber to read and drop.
  local mv, me = unpack(redis.call('HMGET', meta, 'v', 'e'))
  local v = (tonumber(mv) or 0) + 1
  local exists = redis.call('EXISTS', key)
  if events > 0 then
    redis.call('HSET', meta, 'v', v, 'p', exists, 'e', (tonumber(me) or 0) + events)
  else
    redis.call('HSET', meta, 'v', v, 'p', exists)
  end
  if member then
    redis.call('XADD', journal_key, '*', 'k', key, 'v', v, 'op', op, 'm', member)
  else
    redis.call('XADD', journal_key, '*', 'k', key, 'v', v, 'op', op)
  end
  return v
end
"#;

/// KEYS: mnodes, sponsors, meta(mnodes), journal, tomb(mnodes), meta(sponsors)
/// ARGV: uid, member, quota_sponsor, quota_free, ttl, sync_on, force
const ADD_EXCLUSION: &str = r#"
local uid, member, ttl = ARGV[1], ARGV[2], ARGV[5]
local sync_on, force = ARGV[6] == '1', ARGV[7] == '1'
-- Sponsorship is unknown while the sponsors set itself awaits its fetch-back.
local unknown = sync_on and needs_fetch(KEYS[6], KEYS[2])
if unknown and not force then return {-2} end
local sponsor = redis.call('SISMEMBER', KEYS[2], uid) == 1
if sync_on and sponsor and not force and needs_fetch(KEYS[3], KEYS[1]) then return {-1} end
local quota = tonumber(sponsor and ARGV[3] or ARGV[4])
local count = redis.call('SCARD', KEYS[1])
local added = 0
if redis.call('SISMEMBER', KEYS[1], member) == 0 then
  if count >= quota then return {-3, quota} end
  redis.call('SADD', KEYS[1], member)
  added, count = 1, count + 1
end
-- An add beats an earlier removal of the member, whoever the user turns out to be.
if sync_on then redis.call('SREM', KEYS[5], member) end
if sponsor then
  local events = added
  if redis.call('PERSIST', KEYS[1]) == 1 then events = events + 1 end
  if sync_on then
    if added == 1 then
      journal(KEYS[4], KEYS[3], KEYS[1], 'sadd', member, events)
    elseif events > 0 then
      redis.call('HINCRBY', KEYS[3], 'e', events)
    end
  end
else
  redis.call('EXPIRE', KEYS[1], ttl)
  -- Maybe a sponsor: journal the key, the worker mirrors it if they are.
  if unknown and added == 1 then journal(KEYS[4], KEYS[3], KEYS[1], 'full', nil, 0) end
end
return {added, count, sponsor and 1 or 0}
"#;

/// KEYS: mnodes, sponsors, meta(mnodes), journal, tomb(mnodes), meta(sponsors)
/// ARGV: uid, member, ttl, sync_on, force
const REMOVE_EXCLUSION: &str = r#"
local uid, member, ttl = ARGV[1], ARGV[2], ARGV[3]
local sync_on, force = ARGV[4] == '1', ARGV[5] == '1'
local unknown = sync_on and needs_fetch(KEYS[6], KEYS[2])
if unknown and not force then return {-2} end
local sponsor = redis.call('SISMEMBER', KEYS[2], uid) == 1
-- Whether the key awaits its fetch-back, judged before the change.
local unfetched = sync_on and (sponsor or unknown) and needs_fetch(KEYS[3], KEYS[1])
if sponsor and unfetched and not force then return {-1} end
local removed = redis.call('SREM', KEYS[1], member)
local exists = redis.call('EXISTS', KEYS[1])
if sync_on and (sponsor or unknown) then
  -- The remote may still hold the member: remember the removal for the merge.
  if unfetched then redis.call('SADD', KEYS[5], member) end
  if sponsor and removed == 1 then
    journal(KEYS[4], KEYS[3], KEYS[1], 'srem', member, 2 - exists)
  elseif unfetched or removed == 1 then
    journal(KEYS[4], KEYS[3], KEYS[1], 'full', nil, 0)
  end
elseif not sponsor and removed == 1 and exists == 1 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return {removed, sponsor and 1 or 0}
"#;

/// KEYS: mnodes, sponsors, meta(mnodes), meta(sponsors)
/// ARGV: uid, sync_on, force
const READ_EXCLUSIONS: &str = r#"
local uid = ARGV[1]
local sync_on, force = ARGV[2] == '1', ARGV[3] == '1'
if sync_on and not force and needs_fetch(KEYS[4], KEYS[2]) then return {-2} end
local sponsor = redis.call('SISMEMBER', KEYS[2], uid) == 1
if sync_on and sponsor and not force and needs_fetch(KEYS[3], KEYS[1]) then return {-1} end
local out = {0, sponsor and 1 or 0}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do out[#out + 1] = m end
return out
"#;

/// KEYS: user_details, sponsors, meta(user_details), meta(sponsors)
/// ARGV: uid, sync_on, force
/// Returns {0, sponsor, field, value, ...} (no fields when the hash is absent).
const READ_USER: &str = r#"
local uid = ARGV[1]
local sync_on, force = ARGV[2] == '1', ARGV[3] == '1'
if sync_on and not force and needs_fetch(KEYS[4], KEYS[2]) then return {-2} end
local sponsor = redis.call('SISMEMBER', KEYS[2], uid) == 1
if sync_on and sponsor and not force and needs_fetch(KEYS[3], KEYS[1]) then return {-1} end
local out = {0, sponsor and 1 or 0}
for _, x in ipairs(redis.call('HGETALL', KEYS[1])) do out[#out + 1] = x end
return out
"#;

/// Sets a user's sponsor status and, when given, their details.
/// KEYS: user_details, sponsors, mnodes, meta(user_details), meta(sponsors),
///       meta(mnodes), journal, tomb(sponsors)
/// ARGV: uid, status ('1' sponsor, '0' not, 'keep' unknown), ttl, sync_on, force,
///       field, value, ...
/// Returns {-2} or {was_sponsor, is_sponsor}.
const SET_SPONSOR: &str = r#"
local uid, status, ttl = ARGV[1], ARGV[2], ARGV[3]
local sync_on, force = ARGV[4] == '1', ARGV[5] == '1'
local unknown = sync_on and needs_fetch(KEYS[5], KEYS[2])
if unknown and not force then return {-2} end
local was = redis.call('SISMEMBER', KEYS[2], uid) == 1
local now = was
if status == '1' then now = true elseif status == '0' then now = false end
-- Keyspace events each change causes, so the notification leader can tell
-- them from other programs' changes (meta field e).
local details_events = 1
if #ARGV > 5 then
  local fields = {}
  for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
  details_events = 2
end
redis.call('HSET', KEYS[1], 'sponsor', now and '1' or '0')
if now and not was then
  redis.call('SADD', KEYS[2], uid)
  local persisted = redis.call('PERSIST', KEYS[3])
  if sync_on then
    redis.call('SREM', KEYS[8], uid)
    journal(KEYS[7], KEYS[5], KEYS[2], 'sadd', uid, 1)
    -- A returning sponsor gets their remote copy back: merge it before next use.
    redis.call('HDEL', KEYS[6], 'h')
    journal(KEYS[7], KEYS[6], KEYS[3], 'full', nil, persisted)
  end
elseif not now and (was or (unknown and status == '0')) then
  local removed = redis.call('SREM', KEYS[2], uid)
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], ttl) end
  if sync_on then
    -- The remote sponsors set may still hold the id: the merge must not bring it back.
    if unknown then redis.call('SADD', KEYS[8], uid) end
    local events = 0
    if removed == 1 then events = 2 - redis.call('EXISTS', KEYS[2]) end
    journal(KEYS[7], KEYS[5], KEYS[2], 'srem', uid, events)
  end
end
if now and sync_on then
  redis.call('HSET', KEYS[4], 'h', '1')
  journal(KEYS[7], KEYS[4], KEYS[1], 'full', nil, details_events)
end
return {was and 1 or 0, now and 1 or 0}
"#;

/// What a gated script asks the caller to do first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate<T> {
    Done(T),
    /// The key must be fetched back from the remote (then retry), or the call
    /// retried with `force` when the remote is unreachable.
    NeedsFetchBack(SponsorKey),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        added: bool,
        count: u64,
        sponsor: bool,
    },
    QuotaExceeded {
        limit: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    pub sponsor: u64,
    pub free: u64,
}

/// A sponsor status to record; `Keep` leaves the sponsors set as it is (the
/// GitHub check failed: never demote on a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusUpdate {
    Sponsor,
    NotSponsor,
    Keep,
}

/// The API's write path: the scripts above, bound to one deployment's keys.
#[derive(Clone, Debug)]
pub struct WritePath {
    keys: Keys,
    sync_on: bool,
    add: Script,
    remove: Script,
    read: Script,
    read_user: Script,
    set_sponsor: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

impl WritePath {
    /// `sync_on`: whether a remote is configured. Without one nothing is
    /// journaled and nothing waits for a fetch-back.
    pub fn new(keys: Keys, sync_on: bool) -> Self {
        Self {
            keys,
            sync_on,
            add: script(ADD_EXCLUSION),
            remove: script(REMOVE_EXCLUSION),
            read: script(READ_EXCLUSIONS),
            read_user: script(READ_USER),
            set_sponsor: script(SET_SPONSOR),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn sync_on(&self) -> bool {
        self.sync_on
    }

    /// Maps a script's "fetch back first" answers to the key to fetch.
    fn gate(&self, code: i64, key: SponsorKey) -> Option<SponsorKey> {
        match code {
            -2 => Some(SponsorKey::Sponsors),
            -1 => Some(key),
            _ => None,
        }
    }

    pub async fn add_exclusion<C: ConnectionLike>(
        &self,
        conn: &mut C,
        user_id: u64,
        node_id: &str,
        quotas: Quotas,
        ttl_secs: u64,
        force: bool,
    ) -> RedisResult<Gate<AddOutcome>> {
        let mnodes = self.keys.mnodes(user_id);
        let reply: Vec<i64> = self
            .add
            .key(&mnodes)
            .key(self.keys.sponsors())
            .key(self.keys.meta(&mnodes))
            .key(crate::keys::JOURNAL)
            .key(self.keys.tombstones(&mnodes))
            .key(self.keys.meta(self.keys.sponsors()))
            .arg(user_id)
            .arg(node_id)
            .arg(quotas.sponsor)
            .arg(quotas.free)
            .arg(ttl_secs)
            .arg(flag(self.sync_on))
            .arg(flag(force))
            .invoke_async(conn)
            .await?;
        let code = reply.first().copied().unwrap_or(0);
        if let Some(k) = self.gate(code, SponsorKey::Mnodes(user_id)) {
            return Ok(Gate::NeedsFetchBack(k));
        }
        if code == -3 {
            let limit = reply.get(1).copied().unwrap_or(0).max(0) as u64;
            return Ok(Gate::Done(AddOutcome::QuotaExceeded { limit }));
        }
        Ok(Gate::Done(AddOutcome::Added {
            added: code == 1,
            count: reply.get(1).copied().unwrap_or(0).max(0) as u64,
            sponsor: reply.get(2).copied() == Some(1),
        }))
    }

    /// Returns whether the member was present locally and whether the user is a sponsor.
    pub async fn remove_exclusion<C: ConnectionLike>(
        &self,
        conn: &mut C,
        user_id: u64,
        node_id: &str,
        ttl_secs: u64,
        force: bool,
    ) -> RedisResult<Gate<(bool, bool)>> {
        let mnodes = self.keys.mnodes(user_id);
        let reply: Vec<i64> = self
            .remove
            .key(&mnodes)
            .key(self.keys.sponsors())
            .key(self.keys.meta(&mnodes))
            .key(crate::keys::JOURNAL)
            .key(self.keys.tombstones(&mnodes))
            .key(self.keys.meta(self.keys.sponsors()))
            .arg(user_id)
            .arg(node_id)
            .arg(ttl_secs)
            .arg(flag(self.sync_on))
            .arg(flag(force))
            .invoke_async(conn)
            .await?;
        let code = reply.first().copied().unwrap_or(0);
        if let Some(k) = self.gate(code, SponsorKey::Mnodes(user_id)) {
            return Ok(Gate::NeedsFetchBack(k));
        }
        Ok(Gate::Done((code == 1, reply.get(1).copied() == Some(1))))
    }

    /// The user's excluded ids and whether they are a sponsor.
    pub async fn read_exclusions<C: ConnectionLike>(
        &self,
        conn: &mut C,
        user_id: u64,
        force: bool,
    ) -> RedisResult<Gate<(Vec<String>, bool)>> {
        let mnodes = self.keys.mnodes(user_id);
        let reply: Vec<Value> = self
            .read
            .key(&mnodes)
            .key(self.keys.sponsors())
            .key(self.keys.meta(&mnodes))
            .key(self.keys.meta(self.keys.sponsors()))
            .arg(user_id)
            .arg(flag(self.sync_on))
            .arg(flag(force))
            .invoke_async(conn)
            .await?;
        let (code, sponsor, rest) = split_reply(reply)?;
        if let Some(k) = self.gate(code, SponsorKey::Mnodes(user_id)) {
            return Ok(Gate::NeedsFetchBack(k));
        }
        Ok(Gate::Done((rest, sponsor)))
    }

    /// The user's `user_details` fields (empty when absent) and sponsor status.
    pub async fn read_user<C: ConnectionLike>(
        &self,
        conn: &mut C,
        user_id: u64,
        force: bool,
    ) -> RedisResult<Gate<(Vec<(String, String)>, bool)>> {
        let details = self.keys.user_details(user_id);
        let reply: Vec<Value> = self
            .read_user
            .key(&details)
            .key(self.keys.sponsors())
            .key(self.keys.meta(&details))
            .key(self.keys.meta(self.keys.sponsors()))
            .arg(user_id)
            .arg(flag(self.sync_on))
            .arg(flag(force))
            .invoke_async(conn)
            .await?;
        let (code, sponsor, rest) = split_reply(reply)?;
        if let Some(k) = self.gate(code, SponsorKey::UserDetails(user_id)) {
            return Ok(Gate::NeedsFetchBack(k));
        }
        let mut fields = Vec::with_capacity(rest.len() / 2);
        let mut it = rest.into_iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            fields.push((f, v));
        }
        Ok(Gate::Done((fields, sponsor)))
    }

    /// Records a sponsor status (and the user's details when `fields` is not
    /// empty). Returns (was sponsor, is sponsor).
    #[allow(clippy::too_many_arguments)]
    pub async fn set_sponsor<C: ConnectionLike>(
        &self,
        conn: &mut C,
        user_id: u64,
        status: StatusUpdate,
        fields: &[(&str, String)],
        ttl_secs: u64,
        force: bool,
    ) -> RedisResult<Gate<(bool, bool)>> {
        let details = self.keys.user_details(user_id);
        let mnodes = self.keys.mnodes(user_id);
        let sponsors = self.keys.sponsors();
        let mut inv = self.set_sponsor.prepare_invoke();
        inv.key(&details)
            .key(sponsors)
            .key(&mnodes)
            .key(self.keys.meta(&details))
            .key(self.keys.meta(sponsors))
            .key(self.keys.meta(&mnodes))
            .key(crate::keys::JOURNAL)
            .key(self.keys.tombstones(sponsors))
            .arg(user_id)
            .arg(match status {
                StatusUpdate::Sponsor => "1",
                StatusUpdate::NotSponsor => "0",
                StatusUpdate::Keep => "keep",
            })
            .arg(ttl_secs)
            .arg(flag(self.sync_on))
            .arg(flag(force));
        for (field, value) in fields {
            inv.arg(*field).arg(value);
        }
        let reply: Vec<i64> = inv.invoke_async(conn).await?;
        let code = reply.first().copied().unwrap_or(0);
        if code == -2 {
            return Ok(Gate::NeedsFetchBack(SponsorKey::Sponsors));
        }
        Ok(Gate::Done((code == 1, reply.get(1).copied() == Some(1))))
    }
}

/// Splits `{code, sponsor, strings...}`.
fn split_reply(reply: Vec<Value>) -> RedisResult<(i64, bool, Vec<String>)> {
    let mut it = reply.into_iter();
    let code: i64 = match it.next() {
        Some(v) => redis::from_redis_value(v)?,
        None => 0,
    };
    if code < 0 {
        return Ok((code, false, Vec::new()));
    }
    let sponsor: i64 = match it.next() {
        Some(v) => redis::from_redis_value(v)?,
        None => 0,
    };
    let rest = it
        .map(|v| redis::from_redis_value::<String>(v).map_err(redis::RedisError::from))
        .collect::<RedisResult<Vec<String>>>()?;
    Ok((code, sponsor == 1, rest))
}
