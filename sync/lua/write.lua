-- An API change of one sponsor key: the change, its pending entry (what the
-- remote still has to learn) and the key's meta, in one atomic step.
local key, meta, pending, wlist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sync_on, evict, kind, op = ARGV[1] == '1', ARGV[2], ARGV[3], ARGV[4]
local ttl, quota_sponsor, quota_free = ARGV[5], ARGV[6], ARGV[7]
local override, owner, uid = ARGV[8], ARGV[9], ARGV[10]
-- via: a change made through the API ('session', 'token'), appended to the
-- owner's activity stream (KEYS[8]) in this same step; '' for none.
local via, activity_max = ARGV[11], ARGV[12]
-- limit_at: the KEYS index of a rate-limit counter the request counts
-- against first (0: none); a refused request changes nothing.
local limit_at, limit_window, limit_quota = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local FIRST = 16
local rate = nil
if limit_at > 0 then
  rate = gcra(KEYS[limit_at], limit_window, limit_quota)
  if rate[1] == 0 then return {-4, rate[2], rate[3], rate[4]} end
end
local rate_remaining, rate_reset = -1, -1
if rate then rate_remaining, rate_reset = rate[2], rate[3] end
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

local cond = condition_for(sync_on, key, meta, pending, evict, sp)

local changed, events, count, exists = 0, 0, 0, true
if kind == 'set' then
  local member = ARGV[FIRST]
  count = redis.call('SCARD', key)
  if op == 'a' then
    -- SADD's reply says whether it was there; the quota is checked first
    -- only when the set is full.
    local quota = tonumber(sp == '1' and quota_sponsor or quota_free)
    if count >= quota and redis.call('SISMEMBER', key, member) == 0 then
      return {-3, quota, rate_remaining, rate_reset}
    end
    changed = redis.call('SADD', key, member)
    count = count + changed
    events = changed
  else
    changed = redis.call('SREM', key, member)
    count = count - changed
    if changed == 1 then
      events = 1
      if count == 0 then events = 2 end
    end
  end
  exists = count > 0
else
  redis.call('HSET', key, unpack(ARGV, FIRST))
  changed, events = 1, 1
end

if ttl ~= '0' and exists then
  if sp == '1' then
    if redis.call('PERSIST', key) == 1 then
      -- A TTL another program set is gone: the key's end is ours to see again.
      events = events + 1
      redis.call('HDEL', meta, 't')
    end
  elseif sp == '0' then
    redis.call('EXPIRE', key, ttl)
    events = events + 1
  end
end

if via ~= '' and changed == 1 and kind == 'set'
  and string.find('none stream', redis.call('TYPE', KEYS[8]).ok, 1, true) then
  -- (Another program's key of another type there is left alone.)
  local activity = KEYS[8]
  redis.call('XADD', activity, 'MAXLEN', activity_max, '*',
    'kind', op == 'a' and 'add' or 'remove', 'id', ARGV[FIRST], 'via', via)
  -- The stream lives as long as the set: a non-sponsor's expires with it.
  if sp == '0' and ttl ~= '0' then
    redis.call('EXPIRE', activity, ttl)
  elseif sp == '1' then
    redis.call('PERSIST', activity)
  end
end

local stamp = ''
local recorded = false
if sync_on then
  local origin = 'U'
  if sp == '1' then origin = 'S' elseif sp == '0' then origin = 'N' end
  -- A non-sponsor's additions are not persisted; their removals are (they
  -- may still be in a former sponsor's remote copy). A running fetch-back
  -- replays every write on the copy it swaps in, persisted or not.
  recorded = not (origin == 'N' and op == 'a')
  local f, last = unpack(redis.call('HMGET', meta, 'f', 's'))
  local now_us = 0
  if recorded or f then
    local t = redis.call('TIME')
    now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local fetching = f and tonumber(string.match(f, ':(%d+)$') or '0') > math.floor(now_us / 1000)
  if recorded or fetching then
    local s = now_us
    last = tonumber(last or '0')
    if s <= last then s = last + 1 end
    stamp = fmt(s)
    local step = (kind == 'set') and 1 or 2
    for i = FIRST, #ARGV, step do
      local entry = stamp .. ':' .. op .. origin
      if kind == 'hash' then entry = entry .. ':' .. ARGV[i + 1] end
      if recorded then redis.call('HSET', pending, ARGV[i], entry) end
      if fetching then
        redis.call('RPUSH', wlist, ARGV[i], entry)
        redis.call('HINCRBY', meta, 'wn', 1)
        redis.call('PEXPIRE', wlist, 60000)
      end
    end
    redis.call('HSET', meta, 's', stamp, 'p', exists and '1' or '0')
  elseif sp ~= '0' then
    redis.call('HSET', meta, 'p', exists and '1' or '0')
  end
  -- A non-sponsor's key is never compared with a remote copy: its events
  -- need no matching (note.lua ignores them).
  if events > 0 and sp ~= '0' then redis.call('HINCRBY', meta, 'e', events) end
  if sp == '0' and ttl ~= '0' then
    redis.call('EXPIRE', meta, math.max(1, tonumber(ttl) - 1))
  end
end
return {changed, sp or '', cond, count, stamp, sponsors_lost and 1 or 0, recorded and 1 or 0,
  rate_remaining, rate_reset}
