-- Once the owner's sponsorship is known, an entry written while it was not
-- (origin U) takes the origin the API answered with: ARGV field, the entry
-- as written, the entry with its origin. Only where it is still that entry.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
