-- Local: merges the remote copy of a sponsor's activity stream into the
-- local one after the local lost it (entries written since stay; ids are
-- kept, so nothing is doubled), keeping the newest `max`. No prelude.
-- KEYS[1] user:{id}:activity; ARGV: max, then (id, kind, node id, via)...
local key, max = KEYS[1], tonumber(ARGV[1])
local entries = {}
local function put(id, kind, node, via)
  entries[id] = {kind, node, via}
end
for _, e in ipairs(redis.call('XRANGE', key, '-', '+')) do
  local f = {}
  for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
  put(e[1], f['kind'] or '', f['id'] or '', f['via'] or '')
end
local missing = 0
for i = 2, #ARGV, 4 do
  if not entries[ARGV[i]] then
    missing = missing + 1
    put(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
  end
end
if missing == 0 then return 0 end
local ids = {}
for id in pairs(entries) do ids[#ids + 1] = id end
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms or '0'), tonumber(seq or '0')
end
table.sort(ids, function(a, b)
  local am, as = parts(a)
  local bm, bs = parts(b)
  if am ~= bm then return am < bm end
  return as < bs
end)
local ttl = redis.call('TTL', key)
redis.call('DEL', key)
local first = math.max(1, #ids - max + 1)
for i = first, #ids do
  local e = entries[ids[i]]
  redis.call('XADD', key, ids[i], 'kind', e[1], 'id', e[2], 'via', e[3])
end
if ttl > 0 then redis.call('EXPIRE', key, ttl) end
return missing
