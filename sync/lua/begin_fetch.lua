-- Takes the fetch-back lease of a key (meta field f = token:deadline_ms) and
-- starts the list of writes made while it is held. Returns {1, stamp} when
-- the key's local members must first be pushed as additions (a promotion of
-- a complete key, h = 'u' .. epoch), else {1, ''}; {0} when another holds it.
local meta, wlist = KEYS[1], KEYS[2]
local token, lease_ms = ARGV[1], tonumber(ARGV[2])
if in_fetch(meta) then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', meta, 'f', token .. ':' .. fmt(now + lease_ms), 'n', 0, 'wn', 0)
redis.call('DEL', wlist)
local union = ''
if redis.call('HGET', meta, 'h') == 'u' .. epoch() then union = fmt(next_stamp(meta)) end
return {1, union}
