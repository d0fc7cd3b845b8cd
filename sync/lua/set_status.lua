-- Records the owner's sponsorship on one of their keys (see apply_status).
local key, meta, pending = KEYS[1], KEYS[2], KEYS[3]
local sync_on, status, settle, ttl = ARGV[1] == '1', ARGV[2], ARGV[3] == '1', ARGV[4]
return apply_status(key, meta, pending, sync_on, status, settle, ttl) or ''
