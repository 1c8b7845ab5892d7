-- Appended to every wrk script: prints one machine-readable line at the end of a run.
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"seconds":%.6f,"bytes":%d,"rps":%.3f,' ..
    '"lat_mean_ms":%.4f,"lat_p50_ms":%.4f,"lat_p90_ms":%.4f,"lat_p99_ms":%.4f,"lat_max_ms":%.4f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, secs, summary.bytes, summary.requests / secs,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
