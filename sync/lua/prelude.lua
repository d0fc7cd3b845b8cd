-- Shared by every local script (prepended by sync/src/scripts.rs).
-- Stamps are microseconds of the local Redis clock, strictly increasing per
-- key (meta field s), formatted without exponent.
local function fmt(n) return string.format('%.0f', n) end
-- The identity of this Redis process: a restart (with an older snapshot, an
-- empty dataset, or a promoted replica) changes it, so every key hydrated
-- before counts as lost.
local EPOCH = nil
-- The caller passes the run id of the server its connection reached as a
-- last argument `epoch:<run_id>`; without it, INFO says (a few µs more).
if #ARGV > 0 and string.sub(ARGV[#ARGV], 1, 6) == 'epoch:' then
  EPOCH = string.sub(table.remove(ARGV), 7)
end
local function epoch()
  if not EPOCH then EPOCH = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') end
  return EPOCH
end
local function next_stamp(meta)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('HGET', meta, 's') or '0')
  if now <= last then now = last + 1 end
  redis.call('HSET', meta, 's', fmt(now))
  return now
end
-- 'ok': the key holds everything acknowledged (hydrated in this epoch);
-- 'lost': it must be fetched back before a read can be complete.
-- A sponsor key that should exist (p=1) but does not: evicted or expired
-- when the policy can evict it or another program gave it a TTL (meta t,
-- set from its `expire` event), then lost; else deleted by another
-- program, which is a removal: the key is empty and a diff marker mirrors
-- the deletion.
local function condition(key, meta, pending, evict)
  local h, p, sp, t = unpack(redis.call('HMGET', meta, 'h', 'p', 'sp', 't'))
  if h ~= epoch() then return 'lost' end
  if p == '1' and redis.call('EXISTS', key) == 0 then
    if evict == '1' or t == '1' then
      redis.call('HDEL', meta, 'h')
      redis.call('HINCRBY', meta, 'g', 1)
      return 'lost'
    end
    redis.call('HSET', meta, 'p', '0')
    if sp == '1' or string.sub(key, 1, 9) == 'sponsors:' then
      redis.call('HSET', pending, '', fmt(next_stamp(meta)) .. ':dS')
    end
  end
  return 'ok'
end
local function in_fetch(meta)
  local f = redis.call('HGET', meta, 'f')
  if not f then return false end
  local deadline = tonumber(string.match(f, ':(%d+)$') or '0')
  local t = redis.call('TIME')
  return deadline > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Records the owner's sponsorship on one of their keys (meta field sp),
-- with the TTL that goes with it; returns the one before. A promotion has
-- the key fetched back (the remote copy kept from an earlier sponsorship);
-- when the key is complete locally, its members are first pushed as
-- additions (h = 'u' .. epoch) so that additions made meanwhile persist.
-- settle: a non-sponsor's key is complete as it stands (nothing remote).
local function apply_status(key, meta, pending, sync_on, status, settle, ttl)
  local was = redis.call('HGET', meta, 'sp')
  redis.call('HSET', meta, 'sp', status)
  if status == '1' then
    redis.call('PERSIST', meta)
    redis.call('HDEL', meta, 't')
    if ttl ~= '0' and redis.call('PERSIST', key) == 1 then redis.call('HINCRBY', meta, 'e', 1) end
    if sync_on and was == '0' then
      local h = redis.call('HGET', meta, 'h')
      redis.call('HINCRBY', meta, 'g', 1)
      if h == epoch() and redis.call('EXISTS', key) == 1 then
        redis.call('HSET', meta, 'h', 'u' .. h)
      else
        redis.call('HDEL', meta, 'h')
      end
    end
  else
    if ttl ~= '0' then
      if redis.call('EXISTS', key) == 1 then
        redis.call('EXPIRE', key, ttl)
        redis.call('HINCRBY', meta, 'e', 1)
      end
      -- The meta goes a second before the key: an expired key is then a
      -- loss (fetched back at re-promotion), never taken for a deletion.
      redis.call('EXPIRE', meta, math.max(1, tonumber(ttl) - 1))
    end
    if settle and sync_on then
      redis.call('HSET', meta, 'h', epoch(), 'p', redis.call('EXISTS', key))
    end
  end
  return was
end
-- The owner's sponsorship from the sponsors set, when the caller passed it
-- along (KEYS sponsors, its meta, its pending; a single Redis, where every
-- key is on one node): '1'/'0', or '' when that set is lost (the key's own
-- record decides then) — and whether it is lost.
local function sponsorship_from(sync_on, skey, smeta, spending, evict, uid)
  if not skey then return '', false end
  if sync_on and condition(skey, smeta, spending, evict) ~= 'ok' then return '', true end
  return (redis.call('SISMEMBER', skey, uid) == 1) and '1' or '0', false
end
-- The condition a step works with: a non-sponsor's key has no remote copy
-- to wait for, so it is complete as it stands.
local function condition_for(sync_on, key, meta, pending, evict, sp)
  if not sync_on then return 'ok' end
  if sp == '0' then
    if redis.call('HGET', meta, 'h') ~= epoch() then
      redis.call('HSET', meta, 'h', epoch(), 'p', redis.call('EXISTS', key))
    end
    return 'ok'
  end
  return condition(key, meta, pending, evict)
end
