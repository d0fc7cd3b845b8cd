-- Rate limits (GCRA, the generic cell rate algorithm) on the Redis server's
-- clock, so that instances' clocks do not matter: `key` holds the
-- theoretical arrival time (TAT) in µs; each request moves it one emission
-- interval (window / quota) on, and is allowed while the TAT stays within one
-- window of now. Returns {allowed (1/0), remaining, reset µs, retry-after µs};
-- a refused request changes nothing. Shared by the app's own limiter
-- (src/ratelimit.rs) and write.lua, which counts a write in its own step.
local function gcra(key, window, quota)
  local now_t = redis.call('TIME')
  local now = tonumber(now_t[1]) * 1000000 + tonumber(now_t[2])
  -- At least 1 µs: a quota above one per µs of the window is no limit.
  local interval = math.max(1, math.floor(window / quota))
  local tat = tonumber(redis.call('GET', key) or '0') or 0
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - window
  if allow_at > now then
    return {0, 0, tat - now, allow_at - now}
  end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
  local remaining = math.floor((window - (new_tat - now)) / interval)
  return {1, remaining, new_tat - now, 0}
end
