-- After a comparison (or a read in steps) read the local key: was it
-- complete throughout? ARGV: the loss generation begin_diff returned.
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local evict, generation = ARGV[1], ARGV[2]
if condition(key, meta, pending, evict) ~= 'ok' then return 0 end
if (redis.call('HGET', meta, 'g') or '0') ~= generation then return 0 end
return 1
