-- wrk script for bench/ticket_reads.py: GET requests with a bearer token.
--
--   wrk ... -s bench/ticket_reads.lua URL -- <token> codes <file>   rotate over the codes in <file>
--   wrk ... -s bench/ticket_reads.lua URL -- <token> path <path>    one fixed path
--
-- Each thread starts at its own place in the list of codes.  done() prints one
-- JSON line (prefixed "RESULT ") that the Python driver reads.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local token, mode, arg
local paths = {}
local i = 0

function init(args)
  token, mode, arg = args[1], args[2], args[3]
  if mode == "codes" then
    for line in io.lines(arg) do
      if line ~= "" then
        table.insert(paths, "/api/v1/tickets/" .. line)
      end
    end
  else
    table.insert(paths, arg)
  end
  i = (id * 7919) % #paths
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Accept"] = "application/json"
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.1f,' ..
    '"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,"mean_ms":%.2f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
