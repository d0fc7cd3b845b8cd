-- Applies pushed entries on the remote, each only when its stamp is newer
-- than the one the member or field carries there (removals win ties): a
-- last-writer-wins map, so duplicates, reordering and several workers
-- converge. ARGV: kind, then (field, code, stamp, value) quadruples; code
-- 'a' add/set, 'r' remove, 'R' remove only where a remote copy exists.
local key, stamps, meta = KEYS[1], KEYS[2], KEYS[3]
local kind = ARGV[1]
local function fmt(n) return string.format('%.0f', n) end
local has_copy = redis.call('EXISTS', stamps) == 1
local hw = tonumber(redis.call('HGET', meta, 's') or '0')
local applied, touched = 0, false
for i = 2, #ARGV, 4 do
  local f, code, s, v = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  if code ~= 'R' or has_copy then
    touched = true
    local cur = redis.call('HGET', stamps, f)
    local cs, csign = 0, ''
    if cur then csign, cs = string.sub(cur, 1, 1), tonumber(string.sub(cur, 2)) end
    local remove = code ~= 'a'
    if s > cs or (s == cs and remove and csign == '+') then
      if kind == 'set' then
        if remove then redis.call('SREM', key, f) else redis.call('SADD', key, f) end
      else
        if remove then redis.call('HDEL', key, f) else redis.call('HSET', key, f, v) end
      end
      redis.call('HSET', stamps, f, (remove and '-' or '+') .. fmt(s))
      applied = applied + 1
    end
    if s > hw then hw = s end
  end
end
if touched then redis.call('HSET', meta, 's', fmt(hw)) end
return {applied, fmt(hw)}
