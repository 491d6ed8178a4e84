-- One signed-in page under load: send the session cookie, count every response that is not a
-- 200 (wrk itself counts only 4xx/5xx as errors; a 302 to the sign-in page would hide a broken
-- session), and print the figures as one JSON line for bench/measure.py.
local cookie = os.getenv("BENCH_COOKIE") or ""
wrk.headers["Cookie"] = "sessionid=" .. cookie

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_ok = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local not_ok_total = 0
  for _, thread in ipairs(threads) do
    not_ok_total = not_ok_total + (thread:get("not_ok") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, ' ..
    '"errors_timeout": %d, "not_200": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, ' ..
    '"p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, not_ok_total,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max))
end
