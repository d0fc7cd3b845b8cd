-- An API change of one sponsor key: the change, its pending entry (what the
-- remote still has to learn) and the key's meta, in one atomic step.
local key, meta, pending, wlist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sync_on, evict, kind, op = ARGV[1] == '1', ARGV[2], ARGV[3], ARGV[4]
local ttl, quota_sponsor, quota_free = ARGV[5], ARGV[6], ARGV[7]
local override, owner, uid = ARGV[8], ARGV[9], ARGV[10]
local FIRST = 11
local sponsors_lost = false
if override == '' and owner == 'u' then
  override, sponsors_lost = sponsorship_from(sync_on, KEYS[5], KEYS[6], KEYS[7], evict, uid)
end

-- override: the owner's sponsorship as the sponsors set says now (the
-- caller read it; it lives in another slot), '' when it could not be known:
-- then the key's own record decides, so a failure never demotes.
local sp
if owner == 's' then sp = '1'
else
  sp = redis.call('HGET', meta, 'sp')
  if override ~= '' and override ~= sp then
    apply_status(key, meta, pending, sync_on, override, false, ttl)
    sp = override
  end
end

local cond = 'ok'
if sync_on then cond = condition(key, meta, pending, evict) end
-- A non-sponsor's key has no remote copy to wait for: complete as it stands.
if sync_on and cond == 'lost' and sp == '0' then
  redis.call('HSET', meta, 'h', epoch(), 'p', redis.call('EXISTS', key))
  cond = 'ok'
end

local changed, events = 0, 0
if kind == 'set' then
  local member = ARGV[FIRST]
  if op == 'a' then
    if redis.call('SISMEMBER', key, member) == 0 then
      local quota = tonumber(sp == '1' and quota_sponsor or quota_free)
      if redis.call('SCARD', key) >= quota then return {-3, quota} end
      redis.call('SADD', key, member)
      changed, events = 1, 1
    end
  else
    changed = redis.call('SREM', key, member)
    if changed == 1 then
      events = 1
      if redis.call('EXISTS', key) == 0 then events = 2 end
    end
  end
else
  redis.call('HSET', key, unpack(ARGV, FIRST))
  changed, events = 1, 1
end

if ttl ~= '0' and redis.call('EXISTS', key) == 1 then
  if sp == '1' then
    if redis.call('PERSIST', key) == 1 then events = events + 1 end
    redis.call('PERSIST', meta)
    redis.call('HDEL', meta, 't')
  elseif sp == '0' then
    redis.call('EXPIRE', key, ttl)
    events = events + 1
  end
end

local stamp = ''
if sync_on then
  local s = next_stamp(meta)
  stamp = fmt(s)
  local origin = 'U'
  if sp == '1' then origin = 'S' elseif sp == '0' then origin = 'N' end
  -- A non-sponsor's additions are not persisted; their removals are (they
  -- may still be in a former sponsor's remote copy). A running fetch-back
  -- replays every write on the copy it swaps in, persisted or not.
  local record = not (origin == 'N' and op == 'a')
  local fetching = in_fetch(meta)
  local step = (kind == 'set') and 1 or 2
  for i = FIRST, #ARGV, step do
    local entry = stamp .. ':' .. op .. origin
    if kind == 'hash' then entry = entry .. ':' .. ARGV[i + 1] end
    if record then redis.call('HSET', pending, ARGV[i], entry) end
    if fetching then redis.call('RPUSH', wlist, ARGV[i], entry) end
  end
  redis.call('HSET', meta, 'p', redis.call('EXISTS', key))
  if events > 0 then redis.call('HINCRBY', meta, 'e', events) end
  if sp == '0' and ttl ~= '0' then
    redis.call('EXPIRE', meta, math.max(1, tonumber(ttl) - 1))
  end
end
local count = 0
if kind == 'set' then count = redis.call('SCARD', key) end
return {changed, sp or '', cond, count, stamp, sponsors_lost and 1 or 0}
