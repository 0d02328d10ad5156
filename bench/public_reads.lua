-- wrk script for bench/public_reads.py: the public site after a news article.
--
--   wrk ... -s bench/public_reads.lua URL -- status <file>   POST /status, rotating over
--                                                           "<number> <last 3 digits>" lines
--   wrk ... -s bench/public_reads.lua URL -- path <path>     GET one fixed path
--   wrk ... -s bench/public_reads.lua URL -- codes <file> <token>
--                                                           GET /api/v1/tickets/{code} as staff
--
-- done() prints one JSON line (prefixed "RESULT ") that the Python driver reads,
-- with the count of answers that were not 200 (a status lookup that fails is a 404).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local mode, arg, token
local items = {}
local i = 0
not_ok = 0

function init(args)
  mode, arg, token = args[1], args[2], args[3]
  if mode == "status" or mode == "codes" then
    for line in io.lines(arg) do
      if line ~= "" then
        table.insert(items, line)
      end
    end
  else
    table.insert(items, arg)
  end
  i = (id * 7919) % #items
  if token then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  i = i % #items + 1
  if mode == "status" then
    local number, check = items[i]:match("^(%S+) (%S+)$")
    return wrk.format("POST", "/status",
      {["Content-Type"] = "application/x-www-form-urlencoded"},
      "number=" .. number .. "&check=" .. check)
  elseif mode == "codes" then
    return wrk.format("GET", "/api/v1/tickets/" .. items[i])
  end
  return wrk.format("GET", items[i])
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.1f,' ..
    '"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,"mean_ms":%.2f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"not_200":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, bad))
end
