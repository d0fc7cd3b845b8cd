-- After a comparison read the local key: was it complete throughout?
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local evict, token = ARGV[1], ARGV[2]
if condition(key, meta, pending, evict) ~= 'ok' then return 0 end
if redis.call('HGET', meta, 'd') ~= token then return 0 end
redis.call('HDEL', meta, 'd')
return 1
