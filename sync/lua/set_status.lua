-- Records the owner's sponsorship on one of their keys (meta field sp), with
-- the TTL that goes with it. ARGV[3] '1': the key is settled as a
-- non-sponsor's (local data is all there is: hydrated as it stands).
-- A promotion has the key fetched back (the remote copy kept from earlier
-- sponsorship); when the key is complete locally, its members are first
-- pushed as additions (h = 'u' .. epoch), so additions made meanwhile persist.
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local sync_on, status, settle, ttl = ARGV[1] == '1', ARGV[2], ARGV[3] == '1', ARGV[4]
local was = redis.call('HGET', meta, 'sp')
redis.call('HSET', meta, 'sp', status)
if status == '1' then
  redis.call('PERSIST', meta)
  if ttl ~= '0' and redis.call('PERSIST', key) == 1 then redis.call('HINCRBY', meta, 'e', 1) end
  if sync_on and was == '0' then
    local h = redis.call('HGET', meta, 'h')
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
    redis.call('EXPIRE', meta, math.max(1, tonumber(ttl) - 1))
  end
  if settle and sync_on then
    redis.call('HSET', meta, 'h', epoch(), 'p', redis.call('EXISTS', key))
  end
end
return was or ''
