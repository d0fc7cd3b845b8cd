-- POST /exclude with a new node id per request.
-- Env: BENCH_COOKIE (session cookie "name=value"), BENCH_PREFIX (unique per run).
-- Ids: <prefix>-<thread>-<counter>, so no two requests of a run add the same id.
local prefix = os.getenv("BENCH_PREFIX") or "b"
local cookie = os.getenv("BENCH_COOKIE") or ""
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.path = "/exclude"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Cookie"] = cookie
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil,
    '{"id":"' .. prefix .. "-" .. tid .. "-" .. counter .. '"}')
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx3xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
