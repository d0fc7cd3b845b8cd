-- Forgets pending entries the remote has applied (or superseded): only
-- where the entry is still the one pushed, so a newer change stays pending.
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
