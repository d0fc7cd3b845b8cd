-- Local, on a Redis Cluster only: appends one API change to the owner's
-- activity stream right after write.lua made it. The stream's public name
-- has no hash tag, so it lives in another slot than the set and cannot
-- share its step; on a single server write.lua appends in the same step.
-- KEYS[1] user:{id}:activity; ARGV: kind, node id, via, max, sp, ttl
local key = KEYS[1]
local kind, id, via, max, sp, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
-- (Another program's key of another type there is left alone.)
if not string.find('none stream', redis.call('TYPE', key).ok, 1, true) then return 0 end
redis.call('XADD', key, 'MAXLEN', max, '*', 'kind', kind, 'id', id, 'via', via)
-- The stream lives as long as the set: a non-sponsor's expires with it.
if sp == '0' and ttl ~= '0' then
  redis.call('EXPIRE', key, ttl)
elseif sp == '1' then
  redis.call('PERSIST', key)
end
return 1
