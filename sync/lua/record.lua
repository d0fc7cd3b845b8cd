-- Records a comparison's entries as pending changes (pushed like any API
-- change, so a fetch-back pushes them before it reads the remote copy), only
-- while the key stayed complete since begin_diff (loss generation g), and
-- never over a newer pending entry of the same member or field.
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local evict, generation = ARGV[1], ARGV[2]
if condition(key, meta, pending, evict) ~= 'ok' then return 0 end
if (redis.call('HGET', meta, 'g') or '0') ~= generation then return 0 end
for i = 3, #ARGV, 2 do
  local cur = redis.call('HGET', pending, ARGV[i])
  if not cur or tonumber(string.match(cur, '^(%d+)')) < tonumber(string.match(ARGV[i + 1], '^(%d+)')) then
    redis.call('HSET', pending, ARGV[i], ARGV[i + 1])
  end
end
return 1
