-- Starts a comparison of a complete sponsor key with its remote copy: the
-- stamp every difference is pushed with (older than any change made after),
-- and the key's loss generation (meta field g, raised by every loss and
-- every swap) that end_diff checks, so a comparison or a read in steps never
-- trusts a scan of a key lost meanwhile.
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local evict, owner = ARGV[1], ARGV[2]
if condition(key, meta, pending, evict) ~= 'ok' then return {0} end
local sp = redis.call('HGET', meta, 'sp')
if owner ~= 's' and sp ~= '1' then return {-1} end
return {1, fmt(next_stamp(meta)), redis.call('HGET', pending, '') or '', redis.call('HGET', meta, 'g') or '0'}
