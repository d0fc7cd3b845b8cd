-- Stages one chunk of the remote copy for a fetch-back (no chunk: only
-- renews the lease), under its lease: renews the lease and counts the distinct items staged (meta field n), so
-- the swap can tell a staged copy that lost items (evicted) from a whole one.
local meta, staging = KEYS[1], KEYS[2]
local token, lease_ms, kind = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local f = redis.call('HGET', meta, 'f')
if not f or string.sub(f, 1, #token + 1) ~= token .. ':' then return 0 end
-- A lease that ran out, even for a moment, let writes past the list: start over.
if not in_fetch(meta) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', meta, 'f', token .. ':' .. fmt(now + lease_ms))
local added = 0
if #ARGV > 3 then
  if kind == 'set' then
    added = redis.call('SADD', staging, unpack(ARGV, 4))
  else
    added = redis.call('HSET', staging, unpack(ARGV, 4))
  end
  redis.call('PEXPIRE', staging, lease_ms * 2)
end
redis.call('HINCRBY', meta, 'n', added)
return 1
