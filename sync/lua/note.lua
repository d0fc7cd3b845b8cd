-- A keyspace event batch on a sponsor key: events our own scripts caused are
-- matched off (meta field e); anything more is another program's change,
-- which the worker mirrors by comparing the key with its remote copy.
-- ARGV: count of change events, '1' when the key was evicted or expired,
-- '1' when another program gave it a TTL (its expiry will be a loss),
-- '1' when a `del` event was among them (another program's DEL/UNLINK).
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local count, lost, ttl_set, deleted = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3] == '1', ARGV[4] == '1'
if lost then
  redis.call('HDEL', meta, 'h')
  redis.call('HINCRBY', meta, 'g', 1)
  return 2
end
local e = tonumber(redis.call('HGET', meta, 'e') or '0')
if e >= count then
  redis.call('HINCRBY', meta, 'e', -count)
  return 0
end
redis.call('HDEL', meta, 'e')
-- A TTL set by another program: the key's disappearance will be an expiry
-- (a loss), even when it is already gone by now.
if ttl_set then redis.call('HSET', meta, 't', '1') end
local h, sp, t = unpack(redis.call('HMGET', meta, 'h', 'sp', 't'))
-- Not complete (nothing to compare), or a non-sponsor's (never mirrored).
if h ~= epoch() or sp == '0' then return 0 end
if redis.call('EXISTS', key) == 1 then
  redis.call('HSET', meta, 'p', '1')
elseif deleted and t ~= '1' then
  -- Seen deleted by another program (not evicted, not expired): a removal,
  -- whatever the eviction policy.
  redis.call('HSET', meta, 'p', '0')
end
redis.call('HSET', pending, '', fmt(next_stamp(meta)) .. ':dS')
return 1
