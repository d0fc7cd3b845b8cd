-- Remote: appends a sponsor's activity entries the remote copy lacks, with
-- their local ids (so a repeat is a no-op: an id at or below the stream's
-- last is refused by XADD and skipped). No prelude: it runs on the remote.
-- KEYS[1] user:{id}:activity; ARGV: max, then (id, kind, node id, via)...
local key, max = KEYS[1], ARGV[1]
local added = 0
for i = 2, #ARGV, 4 do
  local ok = redis.pcall('XADD', key, 'MAXLEN', max, ARGV[i],
    'kind', ARGV[i + 1], 'id', ARGV[i + 2], 'via', ARGV[i + 3])
  if type(ok) ~= 'table' or not ok.err then added = added + 1 end
end
return added
