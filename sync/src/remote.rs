//! Scripts run on the remote Redis: read a key for a fetch-back, apply a run
//! of set operations, replace a key, and digest a key (also run locally, for
//! reconcile). The remote keeps, per key, `sync:meta:{key}` field `v`: the
//! local version it last applied. Every apply is conditional on it, which
//! makes applies idempotent and safe with several workers.
//!
//! Cluster note: each script touches one key and its meta; with hash tags on
//! `sync:meta:{key}` (or the meta kept in a field of a per-slot hash) they
//! would run unchanged on a Cluster.

use redis::{RedisError, Script, Value};

use crate::config::LUA_CHUNK;
use crate::error::SyncError;
use crate::local::{bytes_list, int, Content};
use crate::Inner;

/// KEYS: key, meta   Returns {v, type, {items}}.
const READ: &str = r#"
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'set' then return {v, t, redis.call('SMEMBERS', KEYS[1])} end
if t == 'hash' then return {v, t, redis.call('HGETALL', KEYS[1])} end
return {v, t, {}}
"#;

/// KEYS: key, meta   ARGV: first version, then op, member pairs (consecutive versions).
/// Returns 1 applied, 0 already applied, -1 needs a full copy.
const APPLY_OPS: &str = r#"
local rv = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local first = tonumber(ARGV[1])
local n = (#ARGV - 1) / 2
local last = first + n - 1
if rv >= last then return 0 end
if rv < first - 1 then return -1 end
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'set' and t ~= 'none' then return -1 end
for i = rv - first + 1, n - 1 do
  local op, m = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  if op == 'sadd' then redis.call('SADD', KEYS[1], m) else redis.call('SREM', KEYS[1], m) end
end
redis.call('HSET', KEYS[2], 'v', last)
return 1
"#;

/// KEYS: key, meta   ARGV: version, type, items...
/// Replaces the key when the version is newer than the remote's. Returns 1 / 0.
fn apply_full_script() -> String {
    format!(
        r#"
local CHUNK = {LUA_CHUNK}
local rv = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if tonumber(ARGV[1]) <= rv then return 0 end
redis.call('DEL', KEYS[1])
local cmd = nil
if ARGV[2] == 'set' then cmd = 'SADD' elseif ARGV[2] == 'hash' then cmd = 'HSET' end
if cmd then
  for i = 3, #ARGV, CHUNK do
    redis.call(cmd, KEYS[1], unpack(ARGV, i, math.min(i + CHUNK - 1, #ARGV)))
  end
end
redis.call('HSET', KEYS[2], 'v', ARGV[1])
return 1
"#
    )
}

/// KEYS: key, meta   Returns {type, count, digest, version}: an order-independent
/// digest (XOR of per-item SHA-1s) of a set's members or a hash's field/value
/// pairs, and the version in the key's meta.
const DIGEST: &str = r#"
local t = redis.call('TYPE', KEYS[1])['ok']
local acc = {0, 0, 0, 0}
local n = 0
local function add(s)
  local h = redis.sha1hex(s)
  for i = 1, 4 do acc[i] = bit.bxor(acc[i], tonumber(string.sub(h, i * 8 - 7, i * 8), 16)) end
  n = n + 1
end
if t == 'set' then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do add(m) end
elseif t == 'hash' then
  local kv = redis.call('HGETALL', KEYS[1])
  for i = 1, #kv, 2 do add(#kv[i] .. ':' .. kv[i] .. kv[i + 1]) end
end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
return {t, n, bit.tohex(acc[1]) .. bit.tohex(acc[2]) .. bit.tohex(acc[3]) .. bit.tohex(acc[4]), v}
"#;

pub(crate) struct RemoteScripts {
    pub read: Script,
    pub apply_ops: Script,
    pub apply_full: Script,
    pub digest: Script,
}

impl RemoteScripts {
    pub(crate) fn new() -> Self {
        Self {
            read: Script::new(READ),
            apply_ops: Script::new(APPLY_OPS),
            apply_full: Script::new(&apply_full_script()),
            digest: Script::new(DIGEST),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetOp {
    Add,
    Rem,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpsOutcome {
    Applied,
    AlreadyApplied,
    NeedsFull,
}

/// What reconcile compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Digest {
    pub kind: String,
    pub count: u64,
    pub hash: String,
    /// Version in the key's meta on that side (not part of the comparison).
    pub v: u64,
}

impl Digest {
    pub(crate) fn same_content(&self, other: &Digest) -> bool {
        (&self.kind, self.count, &self.hash) == (&other.kind, other.count, &other.hash)
    }
}

pub(crate) fn parse_content(
    kind: Value,
    items: Value,
    place: &'static str,
) -> Result<Content, SyncError> {
    Ok(Content {
        kind: redis::from_redis_value::<String>(kind)
            .map_err(|e| SyncError::protocol(place, e.to_string()))?,
        items: bytes_list(items, place)?,
    })
}

impl Inner {
    pub(crate) fn remote_err(&self, source: RedisError) -> SyncError {
        SyncError::Remote {
            addr: self.remote_addr.clone(),
            source,
        }
    }

    /// The remote copy of a key and the version it holds.
    pub(crate) async fn remote_read(&self, name: &str) -> Result<(u64, Content), SyncError> {
        let mut inv = self.remote_scripts.read.prepare_invoke();
        inv.key(name).key(self.keys.meta(name));
        let reply: Vec<Value> = self
            .remote
            .invoke(&inv)
            .await
            .map_err(|e| self.remote_err(e))?;
        let mut it = reply.into_iter();
        let (Some(v), Some(kind), Some(items)) = (it.next(), it.next(), it.next()) else {
            return Err(SyncError::protocol("remote read", "short reply"));
        };
        let v = int(&v, "remote read")?.max(0) as u64;
        Ok((v, parse_content(kind, items, "remote read")?))
    }

    /// Applies a run of set operations with consecutive versions from `first_v`.
    pub(crate) async fn remote_apply_ops(
        &self,
        name: &str,
        first_v: u64,
        ops: &[(SetOp, &[u8])],
    ) -> Result<OpsOutcome, SyncError> {
        let mut inv = self.remote_scripts.apply_ops.prepare_invoke();
        inv.key(name).key(self.keys.meta(name)).arg(first_v);
        for (op, member) in ops {
            inv.arg(if *op == SetOp::Add { "sadd" } else { "srem" })
                .arg(*member);
        }
        let code: i64 = self
            .remote
            .invoke(&inv)
            .await
            .map_err(|e| self.remote_err(e))?;
        Ok(match code {
            1 => OpsOutcome::Applied,
            0 => OpsOutcome::AlreadyApplied,
            _ => OpsOutcome::NeedsFull,
        })
    }

    /// Replaces the remote key with `content` if `v` is newer than the remote's version.
    pub(crate) async fn remote_apply_full(
        &self,
        name: &str,
        v: u64,
        content: &Content,
    ) -> Result<bool, SyncError> {
        let mut inv = self.remote_scripts.apply_full.prepare_invoke();
        inv.key(name)
            .key(self.keys.meta(name))
            .arg(v)
            .arg(&content.kind);
        if content.kind == "set" || content.kind == "hash" {
            for item in &content.items {
                inv.arg(item.as_slice());
            }
        }
        let code: i64 = self
            .remote
            .invoke(&inv)
            .await
            .map_err(|e| self.remote_err(e))?;
        Ok(code == 1)
    }

    /// Digest of a key on the remote (`remote = true`) or the local Redis.
    pub(crate) async fn digest(&self, name: &str, remote: bool) -> Result<Digest, SyncError> {
        let mut inv = self.remote_scripts.digest.prepare_invoke();
        inv.key(name).key(self.keys.meta(name));
        let reply: Vec<Value> = if remote {
            self.remote
                .invoke(&inv)
                .await
                .map_err(|e| self.remote_err(e))?
        } else {
            self.local.invoke(&inv).await.map_err(SyncError::Local)?
        };
        let mut it = reply.into_iter();
        let (Some(kind), Some(count), Some(hash), Some(v)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(SyncError::protocol("digest", "short reply"));
        };
        let text = |v: Value| {
            redis::from_redis_value::<String>(v)
                .map_err(|e| SyncError::protocol("digest", e.to_string()))
        };
        Ok(Digest {
            kind: text(kind)?,
            count: int(&count, "digest")?.max(0) as u64,
            hash: text(hash)?,
            v: int(&v, "digest")?.max(0) as u64,
        })
    }
}
