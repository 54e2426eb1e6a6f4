-- wrk script: POST one household to /v1/evaluate with an API key.
-- Env: JIUZHU_KEY (API key), JIUZHU_BODY (path of the household JSON).
local f = assert(io.open(os.getenv("JIUZHU_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("JIUZHU_KEY")

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_s=%.3f errors_status=%d errors_connect=%d errors_timeout=%d rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.duration / 1e6, summary.errors.status, summary.errors.connect, summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
