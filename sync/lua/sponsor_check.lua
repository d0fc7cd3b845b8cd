-- Whether a user is in the sponsors set, and whether that set is complete.
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local sync_on, evict, uid = ARGV[1] == '1', ARGV[2], ARGV[3]
local cond = 'ok'
if sync_on then cond = condition(key, meta, pending, evict) end
return {cond, redis.call('SISMEMBER', key, uid)}
