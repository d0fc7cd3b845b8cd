-- Ends a fetch-back: the staged remote copy becomes the key, the writes made
-- during the fetch are replayed on it, and the key is hydrated.
local key, meta, staging, wlist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, kind, remote_s = ARGV[1], ARGV[2], tonumber(ARGV[3])
local f, staged, written = unpack(redis.call('HMGET', meta, 'f', 'n', 'wn'))
if not f or string.sub(f, 1, #token + 1) ~= token .. ':' then
  redis.call('UNLINK', staging)
  return 0
end
-- Refused when the lease ran out (writes stopped going to the list), or
-- the staged copy or the list of writes lost anything (evicted): the
-- fetch-back starts over, nothing partial is ever taken for complete.
local size = 0
if kind == 'set' then size = redis.call('SCARD', staging) else size = redis.call('HLEN', staging) end
if not in_fetch(meta) or size ~= tonumber(staged or '0')
    or redis.call('LLEN', wlist) ~= 2 * tonumber(written or '0') then
  redis.call('UNLINK', staging)
  redis.call('DEL', wlist)
  redis.call('HDEL', meta, 'f', 'n', 'wn')
  return 0
end
local events = 0
if redis.call('UNLINK', key) == 1 then events = events + 1 end
if redis.call('EXISTS', staging) == 1 then
  redis.call('RENAME', staging, key)
  redis.call('PERSIST', key)
  events = events + 1
end
local w = redis.call('LRANGE', wlist, 0, -1)
for i = 1, #w, 2 do
  local op, rest = string.match(w[i + 1], '^%d+:(%a)%a(.*)$')
  if kind == 'set' then
    if op == 'a' then events = events + redis.call('SADD', key, w[i])
    else events = events + redis.call('SREM', key, w[i]) end
  elseif op == 'a' then
    redis.call('HSET', key, w[i], string.sub(rest, 2))
    events = events + 1
  end
end
redis.call('DEL', wlist)
local s = tonumber(redis.call('HGET', meta, 's') or '0')
if remote_s > s then s = remote_s end
redis.call('HSET', meta, 'h', epoch(), 'p', redis.call('EXISTS', key), 's', fmt(s))
redis.call('HDEL', meta, 'f', 't', 'n', 'wn')
redis.call('HINCRBY', meta, 'g', 1)
if redis.call('HGET', meta, 'sp') == '0' then
  -- Demoted while the fetch ran: the copy is theirs all the same, with a TTL.
  local ttl = tonumber(ARGV[4])
  if ttl > 0 and redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, ttl) end
else
  redis.call('PERSIST', meta)
end
if events > 0 then redis.call('HINCRBY', meta, 'e', events) end
return 1
