-- bench/latency.lua: wrk prints one machine-readable line at the end
-- (latencies in microseconds; status = non-2xx/3xx answers).
--
-- BENCH_SPLIT_PORTS="P1,P2,...": thread i of wrk connects to port
-- P((i-1) mod n + 1) on the URL's host instead of the URL's port (wrk's
-- documented setup() hook), so one wrk -tT -cC spreads its connections
-- evenly over n servers with T a multiple of n: the same client process,
-- threads and connection count as against a single port.
local split = os.getenv("BENCH_SPLIT_PORTS")
if split and split ~= "" then
  local ports, n = {}, 0
  for p in split:gmatch("%d+") do ports[#ports + 1] = p end
  function setup(thread)
    n = n + 1
    thread.addr = wrk.lookup(wrk.host, ports[(n - 1) % #ports + 1])[1]
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
