-- GET of one path with the session cookie.
-- Env: BENCH_COOKIE ("name=value"), BENCH_PATH (e.g. /exclusions or /me).
local cookie = os.getenv("BENCH_COOKIE") or ""
local path = os.getenv("BENCH_PATH") or "/me"

function init(args)
  wrk.method = "GET"
  wrk.path = path
  wrk.headers["Cookie"] = cookie
  wrk.headers["Accept"] = "application/json"
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx3xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
