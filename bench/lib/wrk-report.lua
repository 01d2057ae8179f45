-- Prints wrk's own counters as one JSON line on stderr when the run ends, so
-- the driver need not parse the human report. Latencies are in microseconds.
-- errors.status counts responses with a status >= 400.
done = function(summary, latency, requests)
  local e = summary.errors
  io.stderr:write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end

-- BENCH_WRK_GAP_MS="lo,hi" (l, through nginx): each connection waits a random
-- lo..hi ms before its next request, as the clients of a proxy do.
local lo, hi = (os.getenv('BENCH_WRK_GAP_MS') or ''):match('^(%d+),(%d+)$')
if lo then
  lo, hi = tonumber(lo), tonumber(hi)
  setup = function(thread) thread:set('seed', math.random(1, 2 ^ 30)) end
  init = function(args) math.randomseed(os.time() + (tonumber(seed) or 0)) end
  delay = function() return math.random(lo, hi) end
end
