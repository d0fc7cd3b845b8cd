-- Reads a key with its condition; the items only while the key is small
-- (larger keys are read with SSCAN/HSCAN, so no call blocks the server).
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local sync_on, evict, limit, kind, owner = ARGV[1] == '1', ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local override, ttl, uid = ARGV[6], ARGV[7], ARGV[8]
local sponsors_lost = false
if override == '' and owner == 'u' then
  override, sponsors_lost = sponsorship_from(sync_on, KEYS[4], KEYS[5], KEYS[6], evict, uid)
end
local sp = redis.call('HGET', meta, 'sp')
if owner == 's' then sp = '1'
elseif override ~= '' and override ~= sp then
  apply_status(key, meta, pending, sync_on, override, false, ttl)
  sp = override
end
local cond = condition_for(sync_on, key, meta, pending, evict, sp)
local n
if kind == 'set' then n = redis.call('SCARD', key) else n = redis.call('HLEN', key) end
local out = {cond, sp or '', n, sponsors_lost and 1 or 0}
if n <= limit then
  local items
  if kind == 'set' then items = redis.call('SMEMBERS', key) else items = redis.call('HGETALL', key) end
  for _, x in ipairs(items) do out[#out + 1] = x end
end
return out
